// Numbers as the console shows them: counts with separators, dollars with enough digits to
// see a cent's millionths, and times in the browser's own time zone.

const COUNT = new Intl.NumberFormat("en-US");

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
