// Reading the change log from a point in time, for the pages that show the
// events of one profile or of one run. Cursors are Redis stream ids
// ("<milliseconds>-<sequence>"), so a time is a cursor.

const PAGE = 1000;
const OUT_OF_RANGE = 11;

function cursorTime(cursor) {
  return Number(String(cursor || "").split("-")[0]) || 0;
}

/**
 * readSince(api, sinceMs, {keep: (event) => bool, signal, maxPages, untilMs})
 *   -> {found: [events kept, oldest first], scanned, complete}
 * sinceMs 0 reads the whole log. Stops at the end of the log, after `untilMs`
 * or after `maxPages` pages (complete: false).
 */
export async function readSince(api, sinceMs, { keep, signal, maxPages = 30, untilMs = 0 }) {
  // A cursor before the oldest event the log holds would be refused as expired:
  // start from the oldest event instead when the period reaches back that far.
  let cursor = "";
  if (sinceMs) {
    const first = await api.get("/v1/changes", { query: { pageSize: 1 }, signal });
    const oldest = (first.events || [])[0];
    if (!oldest) return { found: [], scanned: 0, complete: true };
    if (cursorTime(oldest.cursor) < sinceMs) cursor = `${sinceMs}-0`;
  }
  let scanned = 0;
  const found = [];
  for (let pages = 0; pages < maxPages; pages += 1) {
    let page;
    try {
      page = await api.get("/v1/changes", { query: { afterCursor: cursor, pageSize: PAGE }, signal });
    } catch (error) {
      // Retention trimmed the log between the two reads: read from the oldest event.
      if (error.status === 400 && error.code === OUT_OF_RANGE && cursor && pages === 0) {
        cursor = "";
        pages -= 1;
        continue;
      }
      throw error;
    }
    const events = page.events || [];
    scanned += events.length;
    for (const event of events) if (keep(event)) found.push(event);
    const last = events[events.length - 1];
    if (events.length < PAGE || (untilMs && last && cursorTime(last.cursor) > untilMs)) {
      return { found, scanned, complete: true };
    }
    cursor = page.nextCursor;
  }
  return { found, scanned, complete: false };
}
