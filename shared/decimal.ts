/**
 * Exact decimal arithmetic for volumes and price x volume sums. A trade's price and volume
 * arrive as JSON numbers (binary doubles); each is read as the shortest decimal that round-trips
 * to the same double (what `String(x)` prints), and from then on sums and products are exact,
 * so a candle's volume and VWAP do not depend on the order its trades were folded in.
 *
 * @module
 */

/** An exact decimal: `units x 10^-scale`. */
export interface Decimal {
  readonly units: bigint;
  readonly scale: number;
}

/** Zero. */
export const ZERO: Decimal = Object.freeze({ units: 0n, scale: 0 });

/**
 * The decimal that a finite double prints as (`String(x)`: the shortest round-trip form).
 * Throws a `RangeError` for NaN and infinities.
 */
export function decimalFromNumber(value: number): Decimal {
  if (!Number.isFinite(value)) throw new RangeError(`Cannot make a decimal of ${value}`);
  return parseDecimal(String(value));
}

/** Parses `-12.345`, `1e-7`, `1.5e+21`. Throws a `SyntaxError` for anything else. */
export function parseDecimal(text: string): Decimal {
  const match = /^(-)?(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!match) throw new SyntaxError(`Not a decimal number: ${JSON.stringify(text)}`);
  const [, sign, whole, fraction = "", exponentText = "0"] = match;
  let units = BigInt(whole! + fraction);
  let scale = fraction.length - Number(exponentText);
  if (scale < 0) {
    units *= 10n ** BigInt(-scale);
    scale = 0;
  }
  return normalize({ units: sign ? -units : units, scale });
}

/** Drops trailing zeros of the fraction, so equal values have one representation. */
export function normalize(d: Decimal): Decimal {
  let { units, scale } = d;
  if (units === 0n) return ZERO;
  while (scale > 0 && units % 10n === 0n) {
    units /= 10n;
    scale--;
  }
  return { units, scale };
}

function align(a: Decimal, b: Decimal): [bigint, bigint, number] {
  if (a.scale === b.scale) return [a.units, b.units, a.scale];
  if (a.scale > b.scale) return [a.units, b.units * 10n ** BigInt(a.scale - b.scale), a.scale];
  return [a.units * 10n ** BigInt(b.scale - a.scale), b.units, b.scale];
}

/** a + b, exact. */
export function add(a: Decimal, b: Decimal): Decimal {
  const [x, y, scale] = align(a, b);
  return normalize({ units: x + y, scale });
}

/** a x b, exact. */
export function multiply(a: Decimal, b: Decimal): Decimal {
  return normalize({ units: a.units * b.units, scale: a.scale + b.scale });
}

/** Compares a and b: negative, zero or positive. */
export function compare(a: Decimal, b: Decimal): number {
  const [x, y] = align(a, b);
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * a / b rounded half-to-even to `scale` fraction digits. Throws a `RangeError` when b is zero.
 */
export function divide(a: Decimal, b: Decimal, scale: number): Decimal {
  if (b.units === 0n) throw new RangeError("Division by zero");
  // a/b = (a.units / 10^a.scale) / (b.units / 10^b.scale); scale the numerator so the integer
  // quotient has `scale` digits after the point.
  const shift = scale + b.scale - a.scale;
  let numerator = a.units;
  let denominator = b.units;
  if (shift >= 0) numerator *= 10n ** BigInt(shift);
  else denominator *= 10n ** BigInt(-shift);
  if (denominator < 0n) {
    numerator = -numerator;
    denominator = -denominator;
  }
  let quotient = numerator / denominator;
  const remainder = numerator % denominator;
  const twice = (remainder < 0n ? -remainder : remainder) * 2n;
  if (twice > denominator || (twice === denominator && quotient % 2n !== 0n)) {
    quotient += numerator < 0n ? -1n : 1n;
  }
  return normalize({ units: quotient, scale });
}

/** The plain decimal text of d, e.g. `-0.0012`, never in exponent form. */
export function formatDecimal(d: Decimal): string {
  const negative = d.units < 0n;
  const digits = (negative ? -d.units : d.units).toString();
  if (d.scale === 0) return (negative ? "-" : "") + digits;
  const padded = digits.padStart(d.scale + 1, "0");
  const point = padded.length - d.scale;
  return `${negative ? "-" : ""}${padded.slice(0, point)}.${padded.slice(point)}`;
}

/** Whether two decimals are equal in value. */
export function equals(a: Decimal, b: Decimal): boolean {
  return compare(a, b) === 0;
}
