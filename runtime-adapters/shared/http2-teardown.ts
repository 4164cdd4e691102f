/**
 * Keeps Deno's `node:http2` from freeing an nghttp2 session while nghttp2 is still using it.
 *
 * Deno 2.9.6 runs `node:http2`'s JavaScript event handlers synchronously from inside nghttp2's frame
 * processing (`nghttp2_session_mem_recv`), and `Http2Session.destroy()` frees the native nghttp2 session at
 * once. Its own GOAWAY handler calls `destroy()` from there: at once for a GOAWAY with an error code, and
 * through `close()` for a GOAWAY(NO_ERROR) that finds no stream open (every test client that closes its
 * session does that to our server). nghttp2 then goes on processing the GOAWAY
 * (`session_close_stream_on_goaway`) with freed memory, and the process dies with SIGSEGV or the assertion
 * `find_stream_on_goaway_func: stream->closed_next == NULL` (denoland/deno issue 36788). Node's own C++
 * binding defers the free while nghttp2 is on the stack; Deno's does not, and no handler of ours can stop
 * its built-in call. Reproduced by test/integration/fixtures/goaway-server-child.ts (without this guard a
 * child of 300-1000 such GOAWAYs aborted in 12 of 15 runs; with it, none).
 */
import type { Http2Session } from "node:http2";

const onDeno = (globalThis as { Deno?: unknown }).Deno !== undefined;

/**
 * On Deno, replaces `session.destroy` (the instance's own property, so every caller — the runtime's GOAWAY
 * and socket handlers, `close()`, our code — goes through it) with one that destroys on a later macrotask,
 * once, with the first call's arguments (`error?: Error`, `code?: number`, an HTTP/2 error code). A later
 * macrotask is never inside nghttp2's frame processing. `session.destroyed` turns true only then; callers
 * that must not reuse the session meanwhile test `closed` too (GOAWAY and close() set it at once).
 * On Node and Bun it does nothing: their `destroy()` is already safe from event handlers.
 */
export function deferDestroyOnDeno(session: Http2Session): void {
  if (!onDeno) return;
  const destroyNow = session.destroy.bind(session);
  let scheduled = false;
  session.destroy = (error?: Error, code?: number): void => {
    if (scheduled || session.destroyed) return;
    scheduled = true;
    setTimeout(() => {
      try {
        destroyNow(error, code);
      } catch {
        // already torn down by the socket closing
      }
    }, 0);
  };
}
