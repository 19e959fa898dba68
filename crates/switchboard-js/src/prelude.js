// The JavaScript prelude of Switchboard's local function runner (`JsFunctionInvoker`).
//
// Evaluated in every fresh QuickJS context before the function's own code. The script
// evaluates to a `setup(host, envJson)` function; the Rust side calls it with the host
// bindings (the KV namespace) and the JSON of the environment, and keeps the returned hooks
// (`pick`, `invoke`, `fireTimer`) to itself: user code never sees them.
//
// It provides a small Web-ish surface: Headers, Request, Response, TextEncoder, TextDecoder,
// console (no-ops), crypto.randomUUID / getRandomValues (Math.random, not cryptographic),
// setTimeout / clearTimeout on a virtual clock, Deno.serve / Deno.env, and `fetch`: it throws
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
    }
    clone() {
      return new Request(this.url, { method: this.method, headers: this.headers, body: this._body });
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
  const KV = Object.freeze({
    async get(key, options) {
      const type = typeof options === "string" ? options : (options && options.type) || "text";
      if (type !== "text" && type !== "json") throw new TypeError('KV.get: the type must be "text" or "json"');
      const value = host.kvGet(String(key));
      if (value === null || value === undefined) return null;
      return type === "json" ? JSON.parse(value) : value;
    },
    async put(key, value) {
      if (typeof value !== "string") {
        throw new TypeError("KV.put: the value must be a string (use JSON.stringify for objects)");
      }
      const error = host.kvPut(String(key), value);
      if (error) throw new Error(error);
    },
    async delete(key) { host.kvDelete(String(key)); },
    async list(options = {}) {
      const prefix = options.prefix == null ? "" : String(options.prefix);
      const names = host.kvList(prefix);
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
