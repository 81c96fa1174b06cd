// Preloaded (`node --import`) into the Action's bundle by the end-to-end tests: records, in order, every write
// to stdout, stderr and files, so a test can prove the token was masked before it appeared anywhere else.
// It only observes; every call goes through unchanged. The trace goes to the file in DEPLOY_STS_TEST_TRACE.
import fs from 'node:fs';

const tracePath = process.env.DEPLOY_STS_TEST_TRACE;
if (tracePath) {
  const fd = fs.openSync(tracePath, 'a');
  const record = (channel, data) => {
    const text = typeof data === 'string' ? data : Buffer.isBuffer(data) || data instanceof Uint8Array ? Buffer.from(data).toString('utf8') : String(data);
    fs.writeSync(fd, `${JSON.stringify({ channel, text })}\n`);
  };
  const name = (file) => (typeof file === 'number' ? `fd:${file}` : `file:${String(file)}`);

  for (const method of ['appendFileSync', 'writeFileSync']) {
    const original = fs[method];
    fs[method] = function (file, data, ...rest) {
      record(name(file), data);
      return original.call(this, file, data, ...rest);
    };
  }
  for (const method of ['appendFile', 'writeFile']) {
    const original = fs.promises[method];
    fs.promises[method] = function (file, data, ...rest) {
      record(name(file), data);
      return original.call(this, file, data, ...rest);
    };
  }
  for (const stream of ['stdout', 'stderr']) {
    const target = process[stream];
    const original = target.write;
    target.write = function (chunk, ...rest) {
      record(stream, chunk);
      return original.call(this, chunk, ...rest);
    };
  }
}
