// jsonrpc.js: JSON-RPC error codes and answers, and reading a request's id from its first
// bytes (docs/protocol.md §5).

export const PARSE_ERROR = -32700;
export const INVALID_REQUEST = -32600;
export const MESSAGE_TOO_LARGE = -32050;

const decoder = new TextDecoder();

/** Best effort: the top-level id of a request from the first bytes of its JSON
 * (docs/protocol.md §5): members are read one by one up to the first nested object or
 * array, so an id or method inside it, inside a key or inside a string is never taken. */
export function sniffRequestId(head) {
  const text = typeof head === "string" ? head : decoder.decode(head);
  const space = /[ \t\n\r]*/y;
  const skip = (at) => {
    space.lastIndex = at;
    space.exec(text);
    return space.lastIndex;
  };
  const stringEnd = (at) => { // index after the string starting at `at` (a quote), or -1
    for (let i = at + 1; i < text.length; i++) {
      if (text[i] === "\\") i++;
      else if (text[i] === '"') return i + 1;
    }
    return -1;
  };
  const scalar = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|true|false|null/y;
  let pos = skip(0);
  if (text[pos] !== "{") return null;
  pos += 1;
  let isRequest = false;
  let found;
  for (;;) {
    pos = skip(pos);
    if (text[pos] !== '"') break;
    const keyEnd = stringEnd(pos);
    if (keyEnd < 0) break;
    const key = JSON.parse(text.slice(pos, keyEnd));
    pos = skip(keyEnd);
    if (text[pos] !== ":") break;
    pos = skip(pos + 1);
    if (pos >= text.length || text[pos] === "{" || text[pos] === "[") break;
    let valueEnd;
    if (text[pos] === '"') valueEnd = stringEnd(pos);
    else {
      scalar.lastIndex = pos;
      valueEnd = scalar.exec(text) ? scalar.lastIndex : -1;
    }
    if (valueEnd < 0) break; // truncated
    const token = text.slice(pos, valueEnd);
    pos = skip(valueEnd);
    if (text[pos] !== "," && text[pos] !== "}") break; // cut short ("1" of "1.5"), or not JSON
    const value = JSON.parse(token);
    if (key === "method") isRequest = typeof value === "string";
    else if (key === "id") found = /^-?[0-9]+$/.test(token) || typeof value === "string" ? value : undefined;
    if (text[pos] === "}") break;
    pos += 1;
  }
  if (!isRequest) return null;
  if (typeof found === "string") return found;
  if (Number.isSafeInteger(found)) return found;
  return null;
}

export function errorResponse(id, code, message, data) {
  const error = { code, message };
  if (data !== undefined) error.data = data;
  return JSON.stringify({ jsonrpc: "2.0", id, error });
}

/** The value of JSON `text`, or null where it is not JSON. */
export function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch (error) {
    return null;
  }
}
