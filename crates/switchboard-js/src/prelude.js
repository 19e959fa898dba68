// The JavaScript prelude of Switchboard's local function runner (`JsFunctionInvoker`).
//
// Evaluated in every fresh QuickJS context before the function's own code. The script
// evaluates to a `setup(host, envJson)` function; the Rust side calls it with the host
// bindings (the KV namespace) and the JSON of the environment, and keeps the returned hooks
// (`pick`, `invoke`, `fireTimer`) to itself: user code never sees them.
//
// It provides a small Web-ish surface: Headers, Request, Response, TextEncoder, TextDecoder,
// URL, URLSearchParams, atob / btoa, AbortController / AbortSignal, console (no-ops),
// crypto.randomUUID / getRandomValues (Math.random, not cryptographic), setTimeout /
// clearTimeout on a virtual clock, Deno.serve / Deno.env, and `fetch`: it throws
// unless the host was given an HTTP client, and then sends through `host.fetch`. Nothing here
// reaches files or the process.
(function setup(host, envJson) {
  "use strict";
  const g = globalThis;
  const envVars = JSON.parse(envJson);

  // --- text encoding ------------------------------------------------------------------
  class TextEncoder {
    get encoding() { return "utf-8"; }
    encode(input = "") {
      const s = String(input);
      const out = [];
      for (const ch of s) {
        let c = ch.codePointAt(0);
        if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd; // lone surrogate
        if (c < 0x80) out.push(c);
        else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
        else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
        else out.push(0xf0 | (c >> 18), 0x80 | ((c >> 12) & 63), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
      }
      return new Uint8Array(out);
    }
  }
  class TextDecoder {
    get encoding() { return "utf-8"; }
    decode(input) {
      if (input == null) return "";
      const b = input instanceof ArrayBuffer ? new Uint8Array(input)
        : ArrayBuffer.isView(input) ? new Uint8Array(input.buffer, input.byteOffset, input.byteLength)
        : null;
      if (b === null) throw new TypeError("TextDecoder.decode: expected an ArrayBuffer or a typed array");
      let s = "";
      for (let i = 0; i < b.length;) {
        const x = b[i];
        let c, n;
        if (x < 0x80) { c = x; n = 1; }
        else if (x >= 0xc2 && x < 0xe0) { c = x & 31; n = 2; }
        else if (x >= 0xe0 && x < 0xf0) { c = x & 15; n = 3; }
        else if (x >= 0xf0 && x < 0xf5) { c = x & 7; n = 4; }
        else { s += "\ufffd"; i += 1; continue; }
        let ok = i + n <= b.length;
        for (let k = 1; ok && k < n; k++) {
          if ((b[i + k] & 0xc0) !== 0x80) ok = false; else c = (c << 6) | (b[i + k] & 63);
        }
        if (!ok) { s += "\ufffd"; i += 1; continue; }
        s += String.fromCodePoint(c);
        i += n;
      }
      return s;
    }
  }

  // --- URL, URLSearchParams -------------------------------------------------------------
  // A WHATWG-style URL for what functions do with URLs: parse absolute URLs (special schemes
  // http, https, ws, wss, ftp, file with an authority; others opaque), resolve relative ones
  // against a base, normalise `.`/`..` segments, default ports and case, percent-encode what
  // must be, and keep `searchParams` in step with `search`. Not covered: IDNA (non-ASCII
  // hosts are lower-cased, not punycoded) and IPv6 host normalisation.
  const SPECIAL = { "http:": "80", "https:": "443", "ws:": "80", "wss:": "443", "ftp:": "21", "file:": "" };
  const HEX = "0123456789ABCDEF";
  function pctEncode(s, keep) {
    let out = "";
    for (const b of new TextEncoder().encode(s)) {
      const c = String.fromCharCode(b);
      if (b < 0x80 && keep(c)) out += c;
      else out += "%" + HEX[b >> 4] + HEX[b & 15];
    }
    return out;
  }
  const unreserved = (c) => /[A-Za-z0-9\-._~]/.test(c);
  const pathKeep = (c) => c !== " " && c !== '"' && c !== "<" && c !== ">" && c !== "`" && c !== "#" && c !== "?" && c !== "{" && c !== "}" && c > " " && c !== "\x7f";
  const queryKeep = (c) => c !== " " && c !== '"' && c !== "<" && c !== ">" && c !== "#" && c > " " && c !== "\x7f";
  const fragmentKeep = (c) => c !== " " && c !== '"' && c !== "<" && c !== ">" && c !== "`" && c > " " && c !== "\x7f";
  const userinfoKeep = (c) => pathKeep(c) && c !== "/" && c !== ":" && c !== ";" && c !== "=" && c !== "@" && c !== "[" && c !== "]" && c !== "\\" && c !== "^" && c !== "|";
  function pctDecode(s) {
    const bytes = [];
    for (let i = 0; i < s.length; i++) {
      const c = s[i];
      if (c === "%" && /^[0-9A-Fa-f]{2}$/.test(s.slice(i + 1, i + 3))) {
        bytes.push(parseInt(s.slice(i + 1, i + 3), 16));
        i += 2;
      } else {
        for (const b of new TextEncoder().encode(c)) bytes.push(b);
      }
    }
    return new TextDecoder().decode(new Uint8Array(bytes));
  }
  function normalizePath(path) {
    const segments = path.split("/");
    const out = [];
    for (let i = 0; i < segments.length; i++) {
      const seg = segments[i];
      const last = i === segments.length - 1;
      const lower = seg.toLowerCase();
      if (seg === ".." || lower === "%2e%2e" || lower === ".%2e" || lower === "%2e.") {
        if (out.length > 1) out.pop();
        if (last) out.push("");
      } else if (seg === "." || lower === "%2e") {
        if (last) out.push("");
      } else {
        out.push(seg);
      }
    }
    let joined = out.join("/");
    if (!joined.startsWith("/")) joined = "/" + joined;
    return joined;
  }

  class URLSearchParams {
    constructor(init) {
      this._list = [];
      this._url = null;
      if (init == null) return;
      if (init instanceof URLSearchParams) {
        this._list = init._list.map(([k, v]) => [k, v]);
      } else if (typeof init === "object" && typeof init[Symbol.iterator] === "function") {
        for (const pair of init) {
          const p = [...pair];
          if (p.length !== 2) throw new TypeError("URLSearchParams: each pair must have two items");
          this._list.push([String(p[0]), String(p[1])]);
        }
      } else if (typeof init === "object") {
        for (const k of Object.keys(init)) this._list.push([k, String(init[k])]);
      } else {
        this._parse(String(init));
      }
    }
    _parse(s) {
      this._list = [];
      if (s.startsWith("?")) s = s.slice(1);
      for (const part of s.split("&")) {
        if (part === "") continue;
        const eq = part.indexOf("=");
        const k = eq < 0 ? part : part.slice(0, eq);
        const v = eq < 0 ? "" : part.slice(eq + 1);
        this._list.push([pctDecode(k.replace(/\+/g, " ")), pctDecode(v.replace(/\+/g, " "))]);
      }
    }
    _update() {
      if (this._url) {
        const s = this.toString();
        this._url._query = s === "" ? null : s;
      }
    }
    get size() { return this._list.length; }
    append(name, value) { this._list.push([String(name), String(value)]); this._update(); }
    delete(name, value) {
      const n = String(name);
      this._list = this._list.filter(([k, v]) => !(k === n && (value === undefined || v === String(value))));
      this._update();
    }
    get(name) {
      const n = String(name);
      const hit = this._list.find(([k]) => k === n);
      return hit ? hit[1] : null;
    }
    getAll(name) {
      const n = String(name);
      return this._list.filter(([k]) => k === n).map(([, v]) => v);
    }
    has(name, value) {
      const n = String(name);
      return this._list.some(([k, v]) => k === n && (value === undefined || v === String(value)));
    }
    set(name, value) {
      const n = String(name);
      const i = this._list.findIndex(([k]) => k === n);
      if (i < 0) this._list.push([n, String(value)]);
      else {
        this._list[i][1] = String(value);
        this._list = this._list.filter(([k], j) => k !== n || j === i);
      }
      this._update();
    }
    sort() {
      this._list = this._list
        .map((p, i) => [p, i])
        .sort((a, b) => (a[0][0] < b[0][0] ? -1 : a[0][0] > b[0][0] ? 1 : a[1] - b[1]))
        .map(([p]) => p);
      this._update();
    }
    forEach(callback, thisArg) {
      for (const [k, v] of this._list) callback.call(thisArg, v, k, this);
    }
    *entries() { for (const [k, v] of this._list) yield [k, v]; }
    *keys() { for (const [k] of this._list) yield k; }
    *values() { for (const [, v] of this._list) yield v; }
    [Symbol.iterator]() { return this.entries(); }
    toString() {
      const enc = (s) => pctEncode(s, (c) => /[A-Za-z0-9*\-._ ]/.test(c)).replace(/ /g, "+");
      return this._list.map(([k, v]) => enc(k) + "=" + enc(v)).join("&");
    }
  }

  class URL {
    constructor(input, base) {
      let b = null;
      if (base !== undefined) {
        b = base instanceof URL ? base : URL._parse(String(base), null);
        if (b === null) throw new TypeError("Invalid base URL: " + String(base));
      }
      const parsed = URL._parse(String(input), b);
      if (parsed === null) throw new TypeError("Invalid URL: " + String(input));
      Object.assign(this, parsed);
      this._params = new URLSearchParams(this._query || "");
      this._params._url = this;
    }
    static canParse(input, base) {
      try { new URL(input, base); return true; } catch (_) { return false; }
    }
    static _parse(input, base) {
      let s = input.replace(/^[\x00-\x20]+|[\x00-\x20]+$/g, "").replace(/[\t\n\r]/g, "");
      const m = /^([A-Za-z][A-Za-z0-9+\-.]*):(.*)$/.exec(s);
      if (m) {
        const scheme = m[1].toLowerCase() + ":";
        let rest = m[2];
        if (scheme in SPECIAL) {
          if (base && base._scheme === scheme && !rest.startsWith("/") && !rest.startsWith("\\")) {
            return URL._relative(rest, base);
          }
          rest = rest.replace(/^[\/\\]*/, "");
          return URL._authority(scheme, rest);
        }
        // A non-special scheme: an authority when it starts with `//`, else an opaque path.
        if (rest.startsWith("//")) return URL._authority(scheme, rest.slice(2));
        const split = URL._splitTail(rest);
        return {
          _scheme: scheme, _user: "", _pass: "", _host: null, _port: "", _opaque: true,
          _path: pctEncode(split.path, (c) => c >= " " && c !== "\x7f"), _query: split.query, _fragment: split.fragment,
        };
      }
      if (base == null) return null;
      return URL._relative(s, base);
    }
    static _splitTail(s) {
      let fragment = null, query = null;
      const h = s.indexOf("#");
      if (h >= 0) { fragment = s.slice(h + 1); s = s.slice(0, h); }
      const q = s.indexOf("?");
      if (q >= 0) { query = s.slice(q + 1); s = s.slice(0, q); }
      return { path: s, query, fragment };
    }
    static _authority(scheme, rest) {
      const end = rest.search(/[\/\\?#]/);
      const authority = end < 0 ? rest : rest.slice(0, end);
      const tail = end < 0 ? "" : rest.slice(end);
      let user = "", pass = "", hostport = authority;
      const at = authority.lastIndexOf("@");
      if (at >= 0) {
        const info = authority.slice(0, at);
        hostport = authority.slice(at + 1);
        const colon = info.indexOf(":");
        user = pctEncode(colon < 0 ? info : info.slice(0, colon), userinfoKeep);
        pass = colon < 0 ? "" : pctEncode(info.slice(colon + 1), userinfoKeep);
      }
      let host = hostport, port = "";
      const pm = /^(.*):(\d*)$/.exec(hostport);
      if (pm && !hostport.endsWith("]")) { host = pm[1]; port = pm[2]; }
      host = pctDecode(host).toLowerCase();
      if (scheme in SPECIAL && scheme !== "file:" && host === "") return null;
      if (/[\x00-\x20#%\/:<>?@\[\\\]^|]/.test(host.replace(/^\[.*\]$/, ""))) return null;
      if (port !== "") {
        const n = Number(port);
        if (!Number.isInteger(n) || n > 65535) return null;
        port = String(n);
        if (SPECIAL[scheme] === port) port = "";
      }
      const split = URL._splitTail(tail.replace(/\\/g, "/"));
      const special = scheme in SPECIAL;
      return {
        _scheme: scheme, _user: user, _pass: pass, _host: host, _port: port, _opaque: false,
        _path: special || split.path !== "" ? normalizePath(pctEncode(split.path, pathKeep)) : "",
        _query: split.query === null ? null : pctEncode(split.query, queryKeep),
        _fragment: split.fragment === null ? null : pctEncode(split.fragment, fragmentKeep),
      };
    }
    static _relative(s, base) {
      if (base._opaque) {
        if (s.startsWith("#")) return Object.assign({}, URL._copy(base), { _fragment: pctEncode(s.slice(1), fragmentKeep) });
        return null;
      }
      if (/^[\/\\]{2}/.test(s)) return URL._authority(base._scheme, s.replace(/^[\/\\]*/, ""));
      const split = URL._splitTail(s.replace(/\\/g, "/"));
      const out = URL._copy(base);
      out._fragment = split.fragment === null ? null : pctEncode(split.fragment, fragmentKeep);
      if (split.path === "") {
        if (split.query !== null) out._query = pctEncode(split.query, queryKeep);
        return out;
      }
      out._query = split.query === null ? null : pctEncode(split.query, queryKeep);
      const path = pctEncode(split.path, pathKeep);
      if (path.startsWith("/")) out._path = normalizePath(path);
      else out._path = normalizePath(base._path.slice(0, base._path.lastIndexOf("/") + 1) + path);
      return out;
    }
    static _copy(u) {
      return { _scheme: u._scheme, _user: u._user, _pass: u._pass, _host: u._host, _port: u._port,
        _opaque: u._opaque, _path: u._path, _query: u._query, _fragment: u._fragment };
    }
    get protocol() { return this._scheme; }
    get username() { return this._user; }
    get password() { return this._pass; }
    get hostname() { return this._host === null ? "" : this._host; }
    get port() { return this._port; }
    set port(v) {
      const s = String(v);
      if (s === "") { this._port = ""; return; }
      const n = Number(s);
      if (Number.isInteger(n) && n >= 0 && n <= 65535) this._port = SPECIAL[this._scheme] === String(n) ? "" : String(n);
    }
    get host() { return this.hostname + (this._port ? ":" + this._port : ""); }
    get origin() {
      return this._scheme in SPECIAL && this._scheme !== "file:" ? this._scheme + "//" + this.host : "null";
    }
    get pathname() { return this._path; }
    set pathname(v) {
      if (this._opaque) return;
      const p = pctEncode(String(v), pathKeep);
      this._path = normalizePath(p.startsWith("/") ? p : "/" + p);
    }
    get search() { return this._query ? "?" + this._query : ""; }
    set search(v) {
      let s = String(v);
      if (s.startsWith("?")) s = s.slice(1);
      this._query = s === "" ? null : pctEncode(s, queryKeep);
      this._params._parse(this._query || "");
    }
    get searchParams() { return this._params; }
    get hash() { return this._fragment ? "#" + this._fragment : ""; }
    set hash(v) {
      let s = String(v);
      if (s.startsWith("#")) s = s.slice(1);
      this._fragment = s === "" ? null : pctEncode(s, fragmentKeep);
    }
    get href() {
      let s = this._scheme;
      if (this._host !== null) {
        s += "//";
        if (this._user !== "" || this._pass !== "") s += this._user + (this._pass !== "" ? ":" + this._pass : "") + "@";
        s += this.host;
      }
      s += this._path;
      if (this._query !== null) s += "?" + this._query;
      if (this._fragment !== null) s += "#" + this._fragment;
      return s;
    }
    set href(v) {
      const parsed = URL._parse(String(v), null);
      if (parsed === null) throw new TypeError("Invalid URL: " + String(v));
      Object.assign(this, parsed);
      this._params._parse(this._query || "");
    }
    toString() { return this.href; }
    toJSON() { return this.href; }
  }

  // --- base64 -----------------------------------------------------------------------------
  const B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  function btoa(data) {
    const s = String(data);
    let out = "";
    for (let i = 0; i < s.length; i += 3) {
      const c = [s.charCodeAt(i), s.charCodeAt(i + 1), s.charCodeAt(i + 2)];
      for (const x of c) if (x > 0xff) throw new Error("InvalidCharacterError: btoa: the string has characters outside Latin-1");
      const n = (c[0] << 16) | ((c[1] || 0) << 8) | (c[2] || 0);
      out += B64[(n >> 18) & 63] + B64[(n >> 12) & 63];
      out += i + 1 < s.length ? B64[(n >> 6) & 63] : "=";
      out += i + 2 < s.length ? B64[n & 63] : "=";
    }
    return out;
  }
  function atob(data) {
    let s = String(data).replace(/[\t\n\f\r ]/g, "");
    if (s.length % 4 === 0) s = s.replace(/==?$/, "");
    if (s.length % 4 === 1 || /[^A-Za-z0-9+\/]/.test(s)) {
      throw new Error("InvalidCharacterError: atob: the string is not valid base64");
    }
    let out = "", bits = 0, n = 0;
    for (const ch of s) {
      n = (n << 6) | B64.indexOf(ch);
      bits += 6;
      if (bits >= 8) {
        bits -= 8;
        out += String.fromCharCode((n >> bits) & 0xff);
      }
    }
    return out;
  }

  // --- AbortController --------------------------------------------------------------------
  class AbortSignal {
    constructor() {
      this.aborted = false;
      this.reason = undefined;
      this.onabort = null;
      this._listeners = [];
    }
    addEventListener(type, listener) {
      if (type === "abort" && typeof listener === "function") this._listeners.push(listener);
    }
    removeEventListener(type, listener) {
      this._listeners = this._listeners.filter((l) => l !== listener);
    }
    throwIfAborted() { if (this.aborted) throw this.reason; }
    _abort(reason) {
      if (this.aborted) return;
      this.aborted = true;
      this.reason = reason === undefined ? abortError("This operation was aborted") : reason;
      const event = { type: "abort", target: this };
      if (typeof this.onabort === "function") this.onabort(event);
      for (const l of this._listeners) l(event);
    }
    static abort(reason) {
      const s = new AbortSignal();
      s._abort(reason);
      return s;
    }
    static timeout(ms) {
      const s = new AbortSignal();
      setTimeout(() => s._abort(abortError("The operation timed out", "TimeoutError")), ms);
      return s;
    }
  }
  function abortError(message, name = "AbortError") {
    const e = new Error(message);
    e.name = name;
    return e;
  }
  class AbortController {
    constructor() { this.signal = new AbortSignal(); }
    abort(reason) { this.signal._abort(reason); }
  }

  // --- Headers, Request, Response -----------------------------------------------------
  class Headers {
    constructor(init) {
      this._map = new Map();
      if (init == null) return;
      if (init instanceof Headers) init.forEach((v, k) => this.append(k, v));
      else if (Array.isArray(init)) for (const [k, v] of init) this.append(k, v);
      else if (typeof init === "object") for (const k of Object.keys(init)) this.append(k, init[k]);
    }
    append(name, value) {
      const k = String(name).toLowerCase();
      const old = this._map.get(k);
      this._map.set(k, old === undefined ? String(value) : old + ", " + String(value));
    }
    set(name, value) { this._map.set(String(name).toLowerCase(), String(value)); }
    get(name) {
      const v = this._map.get(String(name).toLowerCase());
      return v === undefined ? null : v;
    }
    has(name) { return this._map.has(String(name).toLowerCase()); }
    delete(name) { this._map.delete(String(name).toLowerCase()); }
    forEach(callback, thisArg) {
      for (const [k, v] of this.entries()) callback.call(thisArg, v, k, this);
    }
    *entries() {
      for (const k of [...this._map.keys()].sort()) yield [k, this._map.get(k)];
    }
    *keys() { for (const [k] of this.entries()) yield k; }
    *values() { for (const [, v] of this.entries()) yield v; }
    [Symbol.iterator]() { return this.entries(); }
  }

  function bodyText(body) {
    if (body == null) return null;
    if (typeof body === "string") return body;
    if (body instanceof ArrayBuffer || ArrayBuffer.isView(body)) return new TextDecoder().decode(body);
    return String(body);
  }

  class Body {
    _consume() {
      if (this.bodyUsed) throw new TypeError("the body has already been read");
      this.bodyUsed = true;
      return this._body === null ? "" : this._body;
    }
    async text() { return this._consume(); }
    async json() { return JSON.parse(this._consume()); }
    async arrayBuffer() { return new TextEncoder().encode(this._consume()).buffer; }
  }

  class Request extends Body {
    constructor(input, init = {}) {
      super();
      this.url = String(input instanceof Request ? input.url : input);
      this.method = String(init.method || "GET").toUpperCase();
      this.headers = new Headers(init.headers);
      this._body = bodyText(init.body);
      this.bodyUsed = false;
      this.signal = init.signal instanceof AbortSignal ? init.signal : new AbortSignal();
    }
    clone() {
      return new Request(this.url, { method: this.method, headers: this.headers, body: this._body, signal: this.signal });
    }
  }

  class Response extends Body {
    constructor(body = null, init = {}) {
      super();
      const status = init.status === undefined ? 200 : Number(init.status);
      if (!Number.isInteger(status) || status < 200 || status > 599) {
        throw new RangeError("Response: the status must be an integer from 200 to 599, got " + init.status);
      }
      this.status = status;
      this.statusText = init.statusText === undefined ? "" : String(init.statusText);
      this.headers = new Headers(init.headers);
      this._body = bodyText(body);
      if (typeof body === "string" && !this.headers.has("content-type")) {
        this.headers.set("content-type", "text/plain;charset=UTF-8");
      }
      this.bodyUsed = false;
      this.type = "default";
      this.redirected = false;
      this.url = "";
    }
    get ok() { return this.status >= 200 && this.status < 300; }
    clone() {
      return new Response(this._body, { status: this.status, statusText: this.statusText, headers: this.headers });
    }
    static json(data, init = {}) {
      const body = JSON.stringify(data);
      if (body === undefined) throw new TypeError("Response.json: the value is not JSON-serializable");
      const headers = new Headers(init.headers);
      if (!headers.has("content-type")) headers.set("content-type", "application/json");
      return new Response(body, { status: init.status, statusText: init.statusText, headers });
    }
  }

  // --- timers on a virtual clock --------------------------------------------------------
  // Callbacks run in order of due time once the function has no other work left; no real
  // time passes (the call's deadline still applies).
  const timers = new Map();
  let timerSeq = 0;
  let clock = 0;
  function setTimeout(callback, delay = 0, ...args) {
    if (typeof callback !== "function") throw new TypeError("setTimeout: the callback must be a function");
    const id = ++timerSeq;
    timers.set(id, { at: clock + Math.max(0, Number(delay) || 0), callback, args });
    return id;
  }
  function clearTimeout(id) { timers.delete(id); }
  function fireTimer() {
    let next = null;
    for (const [id, t] of timers) {
      if (next === null || t.at < next[1].at) next = [id, t];
    }
    if (next === null) return false;
    timers.delete(next[0]);
    clock = next[1].at;
    next[1].callback(...next[1].args);
    return true;
  }

  // --- env, KV, Deno ----------------------------------------------------------------------
  // The host answers `{"v": value}` or `{"e": message}` (a limit, or a store failure).
  function kvCall(answer) {
    const r = JSON.parse(answer);
    if (r.e !== undefined) throw new Error(r.e);
    return r.v;
  }
  const KV = Object.freeze({
    async get(key, options) {
      const type = typeof options === "string" ? options : (options && options.type) || "text";
      if (type !== "text" && type !== "json") throw new TypeError('KV.get: the type must be "text" or "json"');
      const value = kvCall(host.kvGet(String(key)));
      if (value === null || value === undefined) return null;
      return type === "json" ? JSON.parse(value) : value;
    },
    async put(key, value) {
      if (typeof value !== "string") {
        throw new TypeError("KV.put: the value must be a string (use JSON.stringify for objects)");
      }
      kvCall(host.kvPut(String(key), value));
    },
    async delete(key) { kvCall(host.kvDelete(String(key))); },
    async list(options = {}) {
      const prefix = options.prefix == null ? "" : String(options.prefix);
      const names = kvCall(host.kvList(prefix));
      return { keys: names.map((name) => ({ name })), list_complete: true, cursor: "" };
    },
  });
  const env = Object.freeze(Object.assign({}, envVars, { KV }));

  let served = null;
  const Deno = Object.freeze({
    env: Object.freeze({
      get(name) { return Object.prototype.hasOwnProperty.call(envVars, name) ? envVars[name] : undefined; },
      has(name) { return Object.prototype.hasOwnProperty.call(envVars, name); },
      toObject() { return Object.assign({}, envVars); },
    }),
    serve(a, b) {
      const handler = typeof a === "function" ? a
        : typeof b === "function" ? b
        : a && typeof a.handler === "function" ? a.handler
        : null;
      if (handler === null) throw new TypeError("Deno.serve: no handler function given");
      served = handler;
      return { finished: new Promise(() => {}), shutdown: async () => {}, ref() {}, unref() {} };
    },
  });

  // fetch: only when the host has an HTTP client (`JsOptions::http`); the request is sent by
  // the host (`host.fetch`), which checks the URL scheme, the per-call limit and the deadline.
  function fetch(input, init) {
    // An aborted signal rejects first, whatever else (as browsers do).
    const signal = init != null && init.signal !== undefined ? init.signal : input instanceof Request ? input.signal : undefined;
    if (signal && signal.aborted) return Promise.reject(signal.reason);
    if (host.fetchMode === "off") {
      throw new Error(
        "fetch is not available in the local function runner (functions run sandboxed in QuickJS, without network access)"
      );
    }
    return fetchAsync(input, init);
  }
  async function fetchAsync(input, init) {
    if (host.fetchMode !== "on") {
      throw new TypeError("fetch: not available here (only while handling a call, not while the functions are loaded)");
    }
    const options = init == null ? {} : init;
    const request = input instanceof Request ? input : null;
    const url = request ? request.url : String(input);
    const method = String(options.method !== undefined ? options.method : request ? request.method : "GET").toUpperCase();
    const headers = new Headers(options.headers !== undefined ? options.headers : request ? request.headers : undefined);
    const body = options.body !== undefined ? options.body : request ? request._body : null;
    if (body != null && typeof body !== "string") {
      throw new TypeError("fetch: the body must be a string (use JSON.stringify for objects)");
    }
    if (body != null && (method === "GET" || method === "HEAD")) {
      throw new TypeError("fetch: a " + method + " request cannot have a body");
    }
    const answer = JSON.parse(host.fetch(method, url, JSON.stringify([...headers.entries()]), body == null ? null : body));
    if (answer.error !== undefined) throw new TypeError(answer.error);
    const response = new Response(null, { headers: answer.headers });
    response.status = answer.status;
    response._body = answer.body;
    response.url = url;
    return response;
  }

  function randomUUID() {
    const h = "0123456789abcdef";
    let s = "";
    for (let i = 0; i < 36; i++) {
      if (i === 8 || i === 13 || i === 18 || i === 23) s += "-";
      else if (i === 14) s += "4";
      else if (i === 19) s += h[8 + Math.floor(Math.random() * 4)];
      else s += h[Math.floor(Math.random() * 16)];
    }
    return s;
  }
  function getRandomValues(array) {
    if (!ArrayBuffer.isView(array)) throw new TypeError("getRandomValues: expected a typed array");
    const bytes = new Uint8Array(array.buffer, array.byteOffset, array.byteLength);
    for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
    return array;
  }

  const noop = () => {};
  const console = Object.freeze({ log: noop, info: noop, warn: noop, error: noop, debug: noop, trace: noop });

  const define = (name, value) =>
    Object.defineProperty(g, name, { value, writable: true, configurable: true, enumerable: false });
  define("Headers", Headers);
  define("Request", Request);
  define("Response", Response);
  define("TextEncoder", TextEncoder);
  define("TextDecoder", TextDecoder);
  define("setTimeout", setTimeout);
  define("clearTimeout", clearTimeout);
  define("fetch", fetch);
  define("console", console);
  define("crypto", Object.freeze({ randomUUID, getRandomValues }));
  define("URL", URL);
  define("URLSearchParams", URLSearchParams);
  define("atob", atob);
  define("btoa", btoa);
  define("AbortController", AbortController);
  define("AbortSignal", AbortSignal);
  define("Deno", Deno);

  // --- hooks for the host -------------------------------------------------------------------
  // The handler and the way to call it: [function, this, form] or null.
  function pick(namespace, lexicalHandler) {
    if (served !== null) return [served, undefined, "deno"];
    if (namespace !== undefined && namespace !== null) {
      const d = namespace.default;
      if (d && typeof d.fetch === "function") return [d.fetch, d, "worker"];
      if (typeof d === "function") return [d, undefined, "worker"];
      if (typeof namespace.handler === "function") return [namespace.handler, undefined, "handler"];
    }
    if (typeof lexicalHandler === "function") return [lexicalHandler, undefined, "handler"];
    return null;
  }

  // Calls the handler with the request; resolves to {status, body, returned}.
  async function invoke(picked, url, body, executionId, nodeId) {
    const [handler, self, form] = picked;
    const request = new Request(url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "x-switchboard-execution-id": executionId,
        "x-switchboard-node-id": nodeId,
      },
      body,
    });
    const second = form === "deno"
      ? { remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 0 } }
      : env;
    const context = { waitUntil() {}, passThroughOnException() {} };
    const result = await handler.call(self, request, second, context);
    if (result instanceof Response) return { status: result.status, body: result._body, returned: "response" };
    if (result === undefined) return { status: 200, body: null, returned: "nothing" };
    const text = JSON.stringify(result);
    return { status: 200, body: text === undefined ? null : text, returned: "value" };
  }

  return { pick, invoke, fireTimer };
})
