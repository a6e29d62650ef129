// Numbers, durations and times as people read them. The REST API sends
// 64-bit integers as strings and times as RFC 3339 text.

import { h } from "./dom.js";

const integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });

/** A count from the API ("42", 42, undefined) as a number. */
export function num(value) {
  const parsed = Number(value ?? 0);
  return Number.isFinite(parsed) ? parsed : 0;
}

export function count(value) {
  return integer.format(num(value));
}

/** 0.42 s, 12.3 s, 2 min 05 s, 1 h 03 min */
export function seconds(value) {
  const total = num(value);
  if (total < 10) return `${total.toFixed(2)} s`;
  if (total < 60) return `${total.toFixed(1)} s`;
  if (total < 3600) {
    const minutes = Math.floor(total / 60);
    return `${minutes} min ${String(Math.round(total % 60)).padStart(2, "0")} s`;
  }
  const hours = Math.floor(total / 3600);
  return `${hours} h ${String(Math.round((total % 3600) / 60)).padStart(2, "0")} min`;
}

/** An RFC 3339 time from the API as a Date, or null when absent. */
export function parseTime(text) {
  if (!text) return null;
  const date = new Date(text);
  return Number.isNaN(date.getTime()) || date.getTime() <= 0 ? null : date;
}

function pad(value) {
  return String(value).padStart(2, "0");
}

/** 2025-03-01 14:05:09 in the browser's time zone. */
export function localTime(date) {
  return (
    `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`
  );
}

/** 14:05:09, or 03-01 14:05:09 on another day: labels that tell runs seconds apart. */
export function clockTime(date) {
  const today = new Date();
  const time = `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
  return date.toDateString() === today.toDateString()
    ? time
    : `${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${time}`;
}

export function ago(date, now = new Date()) {
  const elapsed = Math.round((now.getTime() - date.getTime()) / 1000);
  if (elapsed < 0) return `in ${seconds(-elapsed)}`;
  if (elapsed < 5) return "just now";
  if (elapsed < 60) return `${elapsed} s ago`;
  if (elapsed < 3600) return `${Math.floor(elapsed / 60)} min ago`;
  if (elapsed < 86400) return `${Math.floor(elapsed / 3600)} h ago`;
  return `${Math.floor(elapsed / 86400)} days ago`;
}

/** A <time> element: local time, with how long ago in its title. */
export function timeElement(text, fallback = "never") {
  const date = parseTime(text);
  if (!date) return h("span", { class: "muted" }, fallback);
  return h("time", { datetime: date.toISOString(), title: ago(date) }, localTime(date));
}

/** Seconds a run took: end minus start, or until now while it runs. */
export function runSeconds(run, now = new Date()) {
  const start = parseTime(run.startTime);
  if (!start) return 0;
  const end = parseTime(run.endTime) || now;
  return Math.max(0, (end.getTime() - start.getTime()) / 1000);
}

export function plural(n, one, many = `${one}s`) {
  return `${count(n)} ${num(n) === 1 ? one : many}`;
}
