/**
 * A small server-sent events reader over a fetch body stream (WHATWG HTML §9.2 "Server-sent events",
 * event stream interpretation): lines split on CRLF/LF/CR, `event:`, `data:` (joined with "\n"), `id:`,
 * comments (`:`) ignored; a blank line dispatches. Used by the SDK's watch because `EventSource` cannot
 * send headers or run outside browsers.
 */

/** One dispatched event. `event` defaults to "message"; `id` is the last id seen (sticky, as in the spec). */
export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

/** Maximum buffered bytes of one unfinished line; past it the stream is treated as broken (bounded memory). */
export const SSE_MAX_LINE_CHARS = 16 * 1024 * 1024;

/**
 * Yields the events of `body` until it ends. Throws `Error("sse line too long")` past `SSE_MAX_LINE_CHARS`;
 * stream errors (network, abort) propagate. Cancels the reader when the consumer stops early.
 */
export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseEvent> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  let event = "";
  let data: string[] = [];
  let lastId: string | undefined;
  let hasData = false;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (!done) buf += decoder.decode(value, { stream: true });
      // A trailing CR may be the first half of CRLF: keep it until the next chunk, or the end.
      const lineEnd = done ? /\r\n|\n|\r/ : /\r\n|\n|\r(?!$)/;
      for (let m = lineEnd.exec(buf); m; m = lineEnd.exec(buf)) {
        const line = buf.slice(0, m.index);
        buf = buf.slice(m.index + m[0].length);
        if (line === "") {
          if (hasData) yield { event: event || "message", data: data.join("\n"), ...(lastId !== undefined ? { id: lastId } : {}) };
          event = "";
          data = [];
          hasData = false;
          continue;
        }
        if (line.startsWith(":")) continue;
        const colon = line.indexOf(":");
        const field = colon < 0 ? line : line.slice(0, colon);
        let val = colon < 0 ? "" : line.slice(colon + 1);
        if (val.startsWith(" ")) val = val.slice(1);
        if (field === "event") event = val;
        else if (field === "data") {
          data.push(val);
          hasData = true;
        } else if (field === "id" && !val.includes("\u0000")) lastId = val;
      }
      // At the end, an unterminated event is dropped (WHATWG: only a blank line dispatches).
      if (done) return;
      if (buf.length > SSE_MAX_LINE_CHARS) throw new Error("sse line too long");
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}
