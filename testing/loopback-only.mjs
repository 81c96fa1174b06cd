/**
 * Preloaded into child processes that tests start but do not control (the real `netlify` CLI): `node --import
 * testing/loopback-only.mjs ...`. Tests touch loopback only — they never even resolve an outside name. Any name other
 * than localhost / 127.0.0.0/8 / ::1 fails at once with ENOTFOUND, and so does a connection to a literal non-loopback
 * address; each refusal is written to stderr as `loopback-guard: refused <host>` so a test can assert which outside
 * hosts the program tried (a new outbound call is then a visible decision, not a silent timeout).
 */
import dns from 'node:dns';
import { syncBuiltinESMExports } from 'node:module';
import net from 'node:net';

const isLoopback = (host) => {
  const h = String(host).toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === '::ffff:127.0.0.1';
};

function refused(host, syscall = 'getaddrinfo') {
  process.stderr.write(`loopback-guard: refused ${host}\n`);
  const error = new Error(`${syscall} ENOTFOUND ${host} (loopback-guard: tests reach loopback only)`);
  Object.assign(error, { code: 'ENOTFOUND', errno: -3008, syscall, hostname: host });
  return error;
}

const lookup = dns.lookup;
dns.lookup = function guardedLookup(hostname, options, callback) {
  const cb = typeof options === 'function' ? options : callback;
  if (!isLoopback(hostname)) {
    process.nextTick(() => cb(refused(hostname)));
    return {};
  }
  return lookup.call(this, hostname, options, callback);
};
const promisesLookup = dns.promises.lookup;
dns.promises.lookup = async function guardedPromisesLookup(hostname, options) {
  if (!isLoopback(hostname)) throw refused(hostname);
  return promisesLookup.call(this, hostname, options);
};
for (const name of ['resolve', 'resolve4', 'resolve6', 'resolveAny', 'resolveCname', 'resolveTxt', 'resolveSrv']) {
  const original = dns[name];
  if (typeof original === 'function') {
    dns[name] = function guardedResolve(hostname, ...rest) {
      const cb = rest.at(-1);
      if (!isLoopback(hostname) && typeof cb === 'function') {
        process.nextTick(() => cb(refused(hostname, 'query')));
        return undefined;
      }
      return original.call(this, hostname, ...rest);
    };
  }
  const promised = dns.promises[name];
  if (typeof promised === 'function') {
    dns.promises[name] = async function guardedPromisesResolve(hostname, ...rest) {
      if (!isLoopback(hostname)) throw refused(hostname, 'query');
      return promised.call(this, hostname, ...rest);
    };
  }
}

// A literal address skips the resolver: check it where the socket connects.
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function guardedConnect(...args) {
  const first = Array.isArray(args[0]) ? args[0][0] : args[0];
  const host = first && typeof first === 'object' ? first.host : typeof args[1] === 'string' ? args[1] : undefined;
  const isPipe = first && typeof first === 'object' && first.path !== undefined;
  if (!isPipe && host !== undefined && net.isIP(String(host).replace(/^\[|\]$/g, '')) && !isLoopback(host)) {
    const error = refused(host, 'connect');
    process.nextTick(() => this.destroy(error));
    return this;
  }
  return connect.apply(this, args);
};

syncBuiltinESMExports();
