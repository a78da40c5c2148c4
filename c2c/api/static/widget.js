/* c2c "Call me now" widget. Embed:
 *   <div data-c2c-widget="WIDGET_ID" style="min-height:11rem"></div>
 *   <script src="https://API_BASE/widget.js" async></script>
 * Sends nothing about the host page: no cookies, no referrer, no URL/title. */
(function () {
  "use strict";
  var VERSION = "1.0.0";

  // Where we were loaded from = where the API lives. currentScript is only
  // set while this file first runs, so read it now.
  var me = document.currentScript;
  if (!me || !me.src) {
    var all = document.querySelectorAll('script[src$="/widget.js"]');
    me = all[all.length - 1];
  }
  if (!me || !me.src) return;
  var API = new URL(me.src, location.href).origin;

  var STATES = ["ringing_you", "connecting", "connected", "ended"];
  var ERRORS = ["invalid_number", "challenge_failed", "origin_not_allowed", "unknown_widget",
    "not_supported", "try_later", "unavailable"];
  // Codes that mean "the service said no to this request" (state refused)
  // rather than "something is broken" (state error).
  var REFUSALS = ["invalid_number", "challenge_failed", "not_supported", "try_later"];
  var POLL_MS = 1000, POLL_MAX_MS = 3 * 3600 * 1000, POLL_MAX_FAILS = 10;

  var T = {
    en: ["Call me now", "Country", "Your phone number", "Call me", "Placing your call…",
      "We're calling you now. Please answer your phone.", "Connecting you…", "You are connected.",
      "The call has ended. Thank you!", "Please enter a valid phone number.",
      "Sorry, we cannot call this number.", "Too many requests. Please try again in a minute.",
      "Too many requests. Please try again in {n} seconds.",
      "Calling is unavailable right now. Please try again later.",
      "We could not verify the request. Please try again."],
    es: ["Te llamamos ahora", "País", "Tu número de teléfono", "Llámame", "Realizando tu llamada…",
      "Te estamos llamando. Por favor, contesta el teléfono.", "Conectándote…", "Estás conectado.",
      "La llamada ha terminado. ¡Gracias!", "Introduce un número de teléfono válido.",
      "Lo sentimos, no podemos llamar a este número.",
      "Demasiadas solicitudes. Inténtalo de nuevo en un minuto.",
      "Demasiadas solicitudes. Inténtalo de nuevo en {n} segundos.",
      "Las llamadas no están disponibles en este momento. Inténtalo más tarde.",
      "No pudimos verificar la solicitud. Inténtalo de nuevo."],
    fr: ["On vous appelle", "Pays", "Votre numéro de téléphone", "Appelez-moi", "Lancement de l'appel…",
      "Nous vous appelons. Veuillez répondre à votre téléphone.", "Mise en relation…",
      "Vous êtes en ligne.", "L'appel est terminé. Merci !",
      "Veuillez saisir un numéro de téléphone valide.",
      "Désolé, nous ne pouvons pas appeler ce numéro.",
      "Trop de demandes. Veuillez réessayer dans une minute.",
      "Trop de demandes. Veuillez réessayer dans {n} secondes.",
      "Les appels sont indisponibles pour le moment. Veuillez réessayer plus tard.",
      "Nous n'avons pas pu vérifier la demande. Veuillez réessayer."],
    de: ["Wir rufen Sie an", "Land", "Ihre Telefonnummer", "Rufen Sie mich an", "Ihr Anruf wird aufgebaut…",
      "Wir rufen Sie jetzt an. Bitte nehmen Sie ab.", "Sie werden verbunden…", "Sie sind verbunden.",
      "Der Anruf ist beendet. Vielen Dank!", "Bitte geben Sie eine gültige Telefonnummer ein.",
      "Leider können wir diese Nummer nicht anrufen.",
      "Zu viele Anfragen. Bitte versuchen Sie es in einer Minute erneut.",
      "Zu viele Anfragen. Bitte versuchen Sie es in {n} Sekunden erneut.",
      "Anrufe sind derzeit nicht möglich. Bitte versuchen Sie es später erneut.",
      "Die Anfrage konnte nicht überprüft werden. Bitte versuchen Sie es erneut."]
  };
  var KEYS = ["title", "country", "phone", "call", "working", "ringing_you", "connecting",
    "connected", "ended", "invalid_number", "not_supported", "try_later", "try_later_n",
    "unavailable", "challenge_failed"];

  function strings(lang) {
    var l = String(lang || "").toLowerCase().split(/[-_]/)[0];
    var arr = T[l] || T.en, s = { lang: T[l] ? l : "en" };
    KEYS.forEach(function (k, i) { s[k] = arr[i]; });
    return s;
  }

  var COUNTRIES = { 1: "US/Canada", 44: "United Kingdom", 33: "France", 49: "Germany", 34: "Spain",
    39: "Italy", 31: "Netherlands", 61: "Australia", 353: "Ireland", 41: "Switzerland",
    32: "Belgium", 43: "Austria", 45: "Denmark", 46: "Sweden", 47: "Norway" };

  // Static skeleton only; all dynamic text goes in via textContent.
  var CSS = ":host{display:block}" +
    ".w{all:initial;display:block;box-sizing:border-box;min-height:11rem;font:inherit;font-size:1rem;" +
    "line-height:1.35;container-type:inline-size;color:#1b1f24;background:#fff;border:1px solid #c8d0d8;border-radius:.5rem;padding:.75rem 1rem}" +
    ".w *{box-sizing:border-box}" +
    "h2{margin:0 0 .5rem;font-size:1.1rem;font-weight:600;line-height:1.25}" +
    ".r{display:flex;gap:.5rem;align-items:flex-end}" +
    ".f{display:flex;flex-direction:column;min-width:0}.c{flex:0 0 auto;max-width:50%}.p{flex:1 1 8rem}" +
    // Tiny containers only: wrapping beats unusable controls (box grows past 11rem).
    "@container (max-width:14rem){.r{flex-wrap:wrap}.f{flex:1 1 100%;max-width:none}}" +
    "label{font-size:.85rem;margin-bottom:.2rem;color:#3a4450;white-space:nowrap}" +
    "select,input,button{font:inherit;height:2.25rem;margin:0;border-radius:.375rem;font-size:1rem}" +
    "select,input{border:1px solid #8a96a3;background:#fff;color:#1b1f24;padding:0 .5rem;width:100%}" +
    "button{flex:0 0 auto;border:0;padding:0 .9rem;background:#0b5cad;color:#fff;font-weight:600;cursor:pointer}" +
    "button:hover{background:#094a8c}button:disabled{background:#7d8b99;cursor:not-allowed}" +
    ":focus-visible{outline:3px solid #f59e0b;outline-offset:2px}" +
    // Status always reserves two lines so messages never push content;
    // labels do not wrap (they may overhang the button column instead).
    "p{margin:.5rem 0 0;min-height:2.7em;font-size:.85rem}" +
    ":host([data-state=refused]) p,:host([data-state=error]) p{color:#b42318}" +
    ":host([data-state=connected]) p{color:#116329}" +
    "[aria-invalid=true]{border-color:#b42318}";
  var HTML = '<form id="c2c-form" class="w" novalidate aria-labelledby="c2c-title">' +
    '<h2 id="c2c-title"></h2><div class="r">' +
    '<div class="f c"><label for="c2c-country"></label><select id="c2c-country" name="country"></select></div>' +
    '<div class="f p"><label for="c2c-phone"></label><input id="c2c-phone" name="phone" type="tel" ' +
    'autocomplete="tel-national" inputmode="tel" aria-describedby="c2c-status"></div>' +
    '<button id="c2c-call" type="submit"></button></div>' +
    '<p id="c2c-status" role="status" aria-live="polite"></p></form>';

  // --- HTTP: never credentials, never referrer. Resolves {status, body}; status 0 = network/CORS failure.
  function req(path, body) {
    var opt = { method: body ? "POST" : "GET", mode: "cors", credentials: "omit",
      referrerPolicy: "no-referrer", cache: "no-store" };
    if (body) { opt.headers = { "Content-Type": "application/json" }; opt.body = JSON.stringify(body); }
    return fetch(API + path, opt).then(function (r) {
      return r.json().then(function (j) { return { status: r.status, body: j }; },
        function () { return { status: r.status, body: null }; });
    }, function () { return { status: 0, body: null }; });
  }
  // Map a non-success response to a known error code, else "unavailable".
  var ALLOWED = { 400: ["invalid_number", "challenge_failed"], 403: ["origin_not_allowed"],
    404: ["unknown_widget"], 422: ["not_supported"], 429: ["try_later"], 503: ["unavailable"] };
  function errCode(res) {
    var e = res.body && res.body.error, ok = ALLOWED[res.status];
    return ok && ok.indexOf(e) >= 0 ? e : "unavailable";
  }

  // --- sha256 fallback (only for pages without crypto.subtle, i.e. insecure http)
  var K, H0;
  function ror(x, n) { return (x >>> n) | (x << (32 - n)); }
  function sha256(bytes) {
    if (!K) { // constants: fractional parts of sqrt/cbrt of the first primes
      K = []; H0 = [];
      for (var p = 2, c = 0; c < 64; p++) {
        for (var d = 2; d * d <= p && p % d; d++);
        if (d * d > p) {
          if (c < 8) H0[c] = (Math.pow(p, 1 / 2) % 1) * 4294967296 | 0;
          K[c++] = (Math.pow(p, 1 / 3) % 1) * 4294967296 | 0;
        }
      }
    }
    var l = bytes.length, nb = ((l + 72) >> 6) << 6, m = new Uint8Array(nb), w = new Int32Array(64);
    m.set(bytes); m[l] = 0x80;
    for (var i = 1, bits = l * 8; i <= 5; i++, bits = Math.floor(bits / 256)) m[nb - i] = bits & 255;
    var h = H0.slice();
    for (i = 0; i < nb; i += 64) {
      for (var j = 0; j < 64; j++) {
        if (j < 16) w[j] = m[i + 4 * j] << 24 | m[i + 4 * j + 1] << 16 | m[i + 4 * j + 2] << 8 | m[i + 4 * j + 3];
        else {
          var x = w[j - 15], y = w[j - 2];
          w[j] = w[j - 16] + (ror(x, 7) ^ ror(x, 18) ^ (x >>> 3)) + w[j - 7] + (ror(y, 17) ^ ror(y, 19) ^ (y >>> 10)) | 0;
        }
      }
      var a = h[0], b = h[1], cc = h[2], dd = h[3], e = h[4], f = h[5], g = h[6], k = h[7];
      for (j = 0; j < 64; j++) {
        var t1 = k + (ror(e, 6) ^ ror(e, 11) ^ ror(e, 25)) + ((e & f) ^ (~e & g)) + K[j] + w[j] | 0;
        var t2 = (ror(a, 2) ^ ror(a, 13) ^ ror(a, 22)) + ((a & b) ^ (a & cc) ^ (b & cc)) | 0;
        k = g; g = f; f = e; e = dd + t1 | 0; dd = cc; cc = b; b = a; a = t1 + t2 | 0;
      }
      var v = [a, b, cc, dd, e, f, g, k];
      for (j = 0; j < 8; j++) h[j] = h[j] + v[j] | 0;
    }
    var out = new Uint8Array(32);
    for (i = 0; i < 32; i++) out[i] = h[i >> 2] >>> (24 - 8 * (i & 3));
    return out;
  }
  // --- end sha256

  function utf8(s) { return new TextEncoder().encode(s); }
  function same(buf, target) {
    var a = new Uint8Array(buf);
    for (var i = 0; i < 32; i++) if (a[i] !== target[i]) return false;
    return true;
  }
  function tick() { return new Promise(function (r) { setTimeout(r, 0); }); }

  // ALTCHA v1 proof of work: find n with sha256(salt + n) == challenge.
  async function solve(ch) {
    var max = Math.min(ch.maxnumber, 1e7), target = new Uint8Array(32), subtle = window.crypto && crypto.subtle;
    for (var i = 0; i < 32; i++) target[i] = parseInt(ch.challenge.substr(2 * i, 2), 16);
    for (var start = 0; start <= max; start += 1000) {
      var end = Math.min(max, start + 999), n;
      if (subtle) {
        var jobs = [];
        for (n = start; n <= end; n++) jobs.push(subtle.digest("SHA-256", utf8(ch.salt + n)));
        var res = await Promise.all(jobs); // awaiting digests already yields to the page
        for (n = 0; n < res.length; n++) if (same(res[n], target)) return start + n;
      } else {
        for (n = start; n <= end; n++) if (same(sha256(utf8(ch.salt + n)), target)) return n;
        await tick(); // keep the page responsive between synchronous chunks
      }
    }
    return -1;
  }
  function b64(s) { // UTF-8 safe btoa
    var bin = "", u = utf8(s);
    for (var i = 0; i < u.length; i++) bin += String.fromCharCode(u[i]);
    return btoa(bin);
  }

  function render(host) {
    var id = host.getAttribute("data-c2c-widget"), root;
    try { root = host.attachShadow({ mode: "open" }); } catch (e) { return; }
    var S = strings(host.getAttribute("data-lang") || document.documentElement.lang);
    root.innerHTML = "<style>" + CSS + "</style>" + HTML;
    var $ = function (s) { return root.querySelector(s); };
    var form = $("#c2c-form"), sel = $("#c2c-country"), phone = $("#c2c-phone"), btn = $("#c2c-call"),
      status = $("#c2c-status"), base = "/api/widget/" + encodeURIComponent(id), busy = true, dead = false;
    form.setAttribute("lang", S.lang);
    $("#c2c-title").textContent = S.title;
    $("label[for=c2c-country]").textContent = S.country;
    $("label[for=c2c-phone]").textContent = S.phone;
    btn.textContent = S.call;

    function say(msg) {
      // Re-announce an identical message by clearing first; the box keeps its height.
      if (status.textContent === msg && msg) {
        status.textContent = "";
        setTimeout(function () { status.textContent = msg; }, 50);
      } else status.textContent = msg;
    }
    function lock(on) {
      busy = on;
      btn.disabled = on || dead;
      btn.setAttribute("aria-disabled", String(on || dead));
    }
    function set(state, msg, err) {
      host.setAttribute("data-state", state);
      if (err) host.setAttribute("data-error", err); else host.removeAttribute("data-error");
      phone.setAttribute("aria-invalid", String(err === "invalid_number"));
      say(msg || "");
    }
    function fail(code, retryAfter) {
      var msg = S[code] || S.unavailable;
      if (code === "try_later" && retryAfter > 0 && retryAfter < 120) msg = S.try_later_n.replace("{n}", Math.ceil(retryAfter));
      set(REFUSALS.indexOf(code) >= 0 ? "refused" : "error", msg, ERRORS.indexOf(code) >= 0 ? code : "unavailable");
      lock(false);
    }

    // One attempt = fresh single-use challenge + POST. Resolves a result object.
    async function attempt(cc, num) {
      var r = await req(base + "/challenge"), ch = r.body;
      if (r.status !== 200) return { error: errCode(r) };
      if (!ch || ch.algorithm !== "SHA-256" || !/^[0-9a-f]{64}$/i.test(ch.challenge) || typeof ch.salt !== "string" ||
        typeof ch.signature !== "string" || !(ch.maxnumber >= 0)) return { error: "unavailable" };
      var n = await solve(ch);
      if (n < 0) return { error: "challenge_failed" };
      var sol = b64(JSON.stringify({ algorithm: ch.algorithm, challenge: ch.challenge, number: n,
        salt: ch.salt, signature: ch.signature }));
      r = await req(base + "/calls", { country_code: cc, phone_number: num, solution: sol });
      if (r.status === 201 && r.body && typeof r.body.token === "string") return r.body;
      return { error: errCode(r), retry: r.body && r.body.retry_after };
    }

    function show(state) {
      if (host.getAttribute("data-state") !== state) set(state, S[state]);
    }

    function poll(token) {
      var t0 = Date.now(), fails = 0;
      (function next() {
        setTimeout(async function () {
          var r = await req("/api/widget/calls/" + encodeURIComponent(token));
          var st = r.status === 200 && r.body && r.body.state;
          if (r.status === 404 || st === "ended" || Date.now() - t0 > POLL_MAX_MS) {
            show("ended"); lock(false); return; // unknown call = forgotten after it ended
          }
          if (STATES.indexOf(st) >= 0) { fails = 0; show(st); } // tolerate transient failures
          else if (++fails >= POLL_MAX_FAILS) return fail("unavailable");
          next();
        }, POLL_MS);
      })();
    }

    form.addEventListener("submit", async function (ev) {
      ev.preventDefault();
      if (busy || dead) return;
      var num = phone.value.replace(/[\s\-.()]/g, ""), cc = sel.value;
      if (!/^\d{4,14}$/.test(num)) { fail("invalid_number"); phone.focus(); return; }
      lock(true);
      set("working", S.working);
      var res = await attempt(cc, num);
      if (res.error === "challenge_failed") res = await attempt(cc, num); // once, with a fresh challenge
      if (res.error) return fail(res.error, res.retry);
      show(STATES.indexOf(res.state) >= 0 ? res.state : "ringing_you");
      if (res.state === "ended") lock(false); else poll(res.token);
    });

    set("loading", "");
    lock(true);
    req(base).then(function (r) {
      var list = r.status === 200 && r.body && r.body.countries;
      if (!Array.isArray(list) || !list.length) {
        dead = true; // cannot work at all: keep the button disabled
        return fail(r.status === 200 ? "unavailable" : errCode(r));
      }
      // Narrow host: codes only, so the phone field keeps a usable width.
      var wd = host.getBoundingClientRect().width, short = wd > 0 && wd < 352;
      list.forEach(function (c) {
        c = String(c).replace(/\D/g, "");
        if (!c) return;
        var o = document.createElement("option");
        o.value = c;
        o.textContent = "+" + c + (COUNTRIES[c] && !short ? " " + COUNTRIES[c] : "");
        sel.appendChild(o);
      });
      set("ready", "");
      lock(false);
    });
  }

  function scan() {
    var hosts = document.querySelectorAll("[data-c2c-widget]");
    for (var i = 0; i < hosts.length; i++) {
      // Mark before rendering so a second copy of this script skips it.
      if (hosts[i].hasAttribute("data-c2c-rendered") || hosts[i].shadowRoot) continue;
      hosts[i].setAttribute("data-c2c-rendered", "");
      render(hosts[i]);
    }
  }

  scan();
  // Loaded before the host div was parsed: look again once the DOM is complete.
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", scan);
  if (!window.C2CWidget) window.C2CWidget = { version: VERSION, scan: scan };
})();
