// Numbers as the console shows them: counts with separators, dollars with enough digits to
// see a cent's millionths, and times in the browser's own time zone.
//
// Money arrives twice: as a float (costs such as totalCost) and as an exact integer of
// nano-dollars (totalCostNanos). Sums are made of the integers, as BigInt, never of the
// floats (13.947539326 + ... drifted to 13.947539326000001); a figure built that way is shown
// with every digit (nanoUsd), so a total always equals the rows shown above it.

const COUNT = new Intl.NumberFormat("en-US");
const NANOS_PER_USD = 1_000_000_000n;

export function count(value) {
  return COUNT.format(value);
}

export function bytes(value) {
  return `${COUNT.format(value)} B`;
}

/** 0.000122 -> "$0.000122", 1.5 -> "$1.50": three significant digits past the zeros. */
export function usd(value) {
  if (value === 0) return "$0";
  const decimals = Math.min(10, Math.max(2, Math.ceil(-Math.log10(Math.abs(value))) + 2));
  const [whole, fraction] = value.toFixed(decimals).split(".");
  return `$${whole}.${fraction.replace(/0+$/, "").padEnd(2, "0")}`;
}

/** Exact dollars from integer nano-dollars: 69300000 -> "$0.0693", 1500000000 -> "$1.50". */
export function nanoUsd(nanos) {
  const value = BigInt(nanos);
  const magnitude = value < 0n ? -value : value;
  const whole = COUNT.format(magnitude / NANOS_PER_USD);
  const fraction = (magnitude % NANOS_PER_USD).toString().padStart(9, "0").replace(/0+$/, "");
  return `${value < 0n ? "-" : ""}$${whole}.${fraction.padEnd(2, "0")}`;
}

/** Integer nano-dollars added exactly: a BigInt, whatever the count or size. */
export function sumNanos(values) {
  return values.reduce((sum, value) => sum + BigInt(value), 0n);
}

/** Dollars as exact decimal text, for data attributes: 69300000 -> "0.0693". */
export function nanoText(nanos) {
  return nanoUsd(nanos).replace(/[$,]/g, "");
}

export function ratio(value) {
  const percent = Math.round(Math.abs(value - 1) * 100);
  if (percent === 0) return `×${value.toFixed(2)} (the estimates match Anthropic's counts)`;
  const direction = value > 1 ? "low" : "high";
  return `×${value.toFixed(2)} (the estimates run ${percent}% ${direction})`;
}

export function dateTime(iso) {
  const moment = new Date(iso);
  return Number.isNaN(moment.getTime()) ? iso : moment.toLocaleString();
}

export function shortId(sessionId) {
  return sessionId.length > 10 ? `${sessionId.slice(0, 8)}…` : sessionId;
}
