// Showing why a profile matched a search: the query's terms found again in
// the matched fields' values and marked, the way the search compares text
// (ignoring case and accents, whole words, `prefix*`, "phrases").

import { h } from "./dom.js";

const WORD = "[\\p{L}\\p{N}]";
const SNIPPET = 80; // characters of About me shown around the first match

function escapeRegex(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Lowercase, without accents: how the search compares. */
function fold(text) {
  return text.normalize("NFD").replace(/\p{M}/gu, "").toLowerCase();
}

/**
 * The positive terms of a query as [{field, pattern}] (field "" for any field);
 * excluded terms (-x) and the OR keyword mark nothing.
 */
export function queryTerms(query) {
  const terms = [];
  const token = /(-?)(?:([A-Za-z]+):)?(?:"([^"]*)"?|(\S+))/g;
  for (const match of query.matchAll(token)) {
    const [, minus, field = "", phrase, word] = match;
    if (minus || word === "OR") continue;
    const text = fold(phrase ?? word ?? "");
    const prefix = phrase === undefined && text.endsWith("*");
    const words = text.replace(/\*$/, "").split(/[^\p{L}\p{N}]+/u).filter(Boolean);
    if (!words.length) continue;
    const body = words.map(escapeRegex).join(`${"[^\\p{L}\\p{N}]+"}`);
    terms.push({ field, pattern: `(?<!${WORD})${body}${prefix ? "" : `(?!${WORD})`}` });
  }
  return terms;
}

/** [start, end) ranges of `text` where any of the terms for `field` match. */
function ranges(text, field, terms) {
  // Fold character by character, remembering where each folded character came from.
  let folded = "";
  const origin = [];
  let index = 0;
  for (const char of text) {
    const part = fold(char);
    for (let i = 0; i < part.length; i += 1) origin.push(index);
    folded += part;
    index += char.length;
  }
  origin.push(text.length);
  const found = [];
  for (const term of terms) {
    if (term.field && term.field.toLowerCase() !== field.toLowerCase()) continue;
    for (const match of folded.matchAll(new RegExp(term.pattern, "gu"))) {
      if (!match[0]) continue;
      const start = origin[match.index];
      const endIndex = match.index + match[0].length;
      const end = endIndex < origin.length - 1 ? origin[endIndex] : text.length;
      found.push([start, end]);
    }
  }
  found.sort((a, b) => a[0] - b[0]);
  const merged = [];
  for (const range of found) {
    const last = merged[merged.length - 1];
    if (last && range[0] <= last[1]) last[1] = Math.max(last[1], range[1]);
    else merged.push([...range]);
  }
  return merged;
}

/** Nodes of `text` with each match in a <mark>; null when nothing matches. */
export function marked(text, field, terms, { snippet = false } = {}) {
  const found = ranges(text, field, terms);
  if (!found.length) return null;
  let from = 0;
  let to = text.length;
  if (snippet && text.length > 2 * SNIPPET) {
    from = Math.max(0, found[0][0] - SNIPPET / 2);
    to = Math.min(text.length, found[0][1] + SNIPPET);
  }
  const nodes = from > 0 ? ["…"] : [];
  let at = from;
  for (const [start, end] of found) {
    if (start >= to) break;
    if (start > at) nodes.push(text.slice(at, start));
    nodes.push(h("mark", {}, text.slice(Math.max(start, at), Math.min(end, to))));
    at = Math.min(end, to);
  }
  if (at < to) nodes.push(text.slice(at, to));
  if (to < text.length) nodes.push("…");
  return nodes;
}
