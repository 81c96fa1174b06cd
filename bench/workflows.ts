/**
 * `npm run bench:workflows`: how long `deploy-sts workflows check` takes over 200 workflow files (copies of the test
 * corpus, good and bad, anchors, matrices, multi-line scripts). Each figure is the median of several runs:
 *   - in process: parse and check the 200 texts (the checker alone, no I/O);
 *   - end to end: `bin/deploy-sts.js workflows check DIR --json` (what the `deploy-sts` command runs) in a child
 *     process, Node.js start-up included;
 *   - only the workflows module loaded, no CLI around it (what the verb itself costs);
 *   - bare `node -e 0`.
 * The target is under a second end to end. Prints the load average: on a shared machine the wall times move with it.
 * Runs on its own; writes nothing but a temp directory it removes.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { checkWorkflowTexts, type WorkflowFile } from '../exchange-service/workflows/check.js';
import { ROOT } from './processes.js';

const FILES = 200;
const IN_PROCESS_RUNS = 20;
const CLI_RUNS = 7;

/** Wall and CPU (user + system, reported by the child at exit) time of a child `node` process, median of CLI_RUNS. */
function runs(args: string[], expectFiles: boolean): { wall: number; cpu: number } {
  const walls: number[] = [];
  const cpus: number[] = [];
  const report = "process.on('exit', () => { const u = process.cpuUsage(); process.stderr.write('cpu:' + (u.user + u.system) + '\\n'); });";
  for (let i = 0; i < CLI_RUNS; i++) {
    const start = performance.now();
    const child = spawnSync(process.execPath, ['--import', `data:text/javascript,${encodeURIComponent(report)}`, ...args], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
    walls.push(performance.now() - start);
    const cpu = /cpu:(\d+)/.exec(child.stderr)?.[1];
    if (cpu === undefined) throw new Error(`the child reported no CPU time: ${child.stderr}`);
    cpus.push(Number(cpu) / 1000);
    if (expectFiles && (JSON.parse(child.stdout) as { files: number }).files !== FILES) throw new Error(`expected ${FILES} files in ${child.stdout.slice(0, 200)}`);
  }
  return { wall: median(walls), cpu: median(cpus) };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const corpus = join(ROOT, 'test', 'workflows', 'corpus');
const sources = readdirSync(corpus)
  .filter((n) => n.endsWith('.yml') && !/^(caller|called-)/.test(n))
  .sort()
  .map((name) => ({ name, text: readFileSync(join(corpus, name), 'utf8') }));
const files: WorkflowFile[] = Array.from({ length: FILES }, (_, i) => {
  const s = sources[i % sources.length]!;
  const name = `w${String(i).padStart(3, '0')}-${s.name}`;
  return { file: name, name, text: s.text };
});
const bytes = files.reduce((n, f) => n + Buffer.byteLength(f.text), 0);

// In process.
checkWorkflowTexts(files); // warm-up
const inProcess: number[] = [];
const inProcessCpu: number[] = [];
let findings = 0;
for (let i = 0; i < IN_PROCESS_RUNS; i++) {
  const start = performance.now();
  const cpu = process.cpuUsage();
  findings = checkWorkflowTexts(files).findings.length;
  const used = process.cpuUsage(cpu);
  inProcess.push(performance.now() - start);
  inProcessCpu.push((used.user + used.system) / 1000);
}

// End to end.
const dir = mkdtempSync(join(tmpdir(), 'deploy-sts-bench-workflows-'));
try {
  for (const f of files) writeFileSync(join(dir, f.name), f.text);
  const launcher = join(ROOT, 'bin', 'deploy-sts.js');
  const command = join(ROOT, 'build', 'exchange-service', 'workflows', 'command.js');
  const moduleScript = `const { workflowsCheck } = await import(${JSON.stringify(command)}); await workflowsCheck({ dir: process.argv[1], json: true }, { stdout: (t) => process.stdout.write(t), stderr: () => {} });`;
  const endToEnd = runs([launcher, 'workflows', 'check', dir, '--json'], true);
  const moduleOnly = runs(['--input-type=module', '-e', moduleScript, dir], true);
  const baseline = runs(['-e', '0'], false);
  const result = {
    files: FILES,
    kib: Math.round(bytes / 1024),
    findings,
    inProcessMs: Number(median(inProcess).toFixed(1)),
    inProcessCpuMs: Number(median(inProcessCpu).toFixed(1)),
    endToEnd,
    moduleOnly,
    nodeStart: baseline,
  };
  console.log(`workflows check over ${result.files} files (${result.kib} KiB, ${result.findings} findings):`);
  console.log(`  in process (parse + rules):        median ${result.inProcessMs} ms wall, ${result.inProcessCpuMs} ms CPU, of ${IN_PROCESS_RUNS} runs`);
  const ms = (t: { wall: number; cpu: number }) => `median ${t.wall.toFixed(0)} ms wall, ${t.cpu.toFixed(0)} ms CPU`;
  console.log(`  end to end (CLI, --json):          ${ms(endToEnd)}, of ${CLI_RUNS} runs`);
  console.log(`  end to end, workflows module only: ${ms(moduleOnly)}, of ${CLI_RUNS} runs`);
  console.log(`  bare node start-up:                ${ms(baseline)}`);
  const met = (t: { wall: number; cpu: number }) => `${t.wall < 1000 ? 'met' : 'NOT met'} (wall), ${t.cpu < 1000 ? 'met' : 'NOT met'} (CPU)`;
  console.log(`  target < 1000 ms end to end:       CLI ${met(endToEnd)}; module only ${met(moduleOnly)}`);
  console.log(`  load average: ${loadavg().map((l) => l.toFixed(1)).join(' ')} on this machine`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
