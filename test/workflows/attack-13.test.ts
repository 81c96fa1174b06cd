/**
 * Review of `deploy-sts workflows check` (issue 13) by an outside attacker: dangerous workflows written in forms
 * GitHub Actions accepts, each of which must still be reported at error level at the offending text. Also the env
 * indirection GitHub recommends (which must stay clean), and hostile files (crash, aliases, links, terminal escapes).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it, onTestFinished } from 'vitest';
import { checkWorkflowTexts, type CheckOptions } from '../../exchange-service/workflows/check.js';
import { workflowsCheck } from '../../exchange-service/workflows/command.js';
import { textReport } from '../../exchange-service/workflows/report.js';
import { toSarif } from '../../exchange-service/workflows/sarif.js';
import { tempDir } from '../helpers/service.js';

/** A privileged, gated job on `on` (so only the rule under test fires), with `steps` (and extra job keys) as written. */
function job(on: string, steps: string[], jobKeys: string[] = []): string {
  return [`on: ${on}`, 'permissions: {}', 'jobs:', '  d:', '    runs-on: ubuntu-latest', '    environment: e', '    permissions:', '      id-token: write', ...jobKeys, '    steps:', ...steps, ''].join('\n');
}

type Files = string | Record<string, string>;

function errors(files: Files, options: CheckOptions = {}) {
  const list = typeof files === 'string' ? [{ file: 'w.yml', name: 'w.yml', text: files }] : Object.entries(files).map(([name, text]) => ({ file: name, name, text }));
  return checkWorkflowTexts(list, options).findings.filter((f) => f.severity === 'error');
}

/** The finding of `rule` in `file` on `line` exists and its column points at `text`. */
function expectAt(files: Files, rule: string, line: number, text: string, options: CheckOptions = {}, file = 'w.yml') {
  const source = typeof files === 'string' ? files : files[file]!;
  const found = errors(files, options).filter((f) => f.rule === rule && f.file === file);
  expect(found.map((f) => f.line), `${rule} in ${file}`).toContain(line);
  const f = found.find((x) => x.line === line)!;
  expect(source.split('\n')[line - 1]!.slice(f.column - 1)).toMatch(new RegExp(`^${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
}

const PRT = 'pull_request_target';
const checkout = (...with_: string[]) => ['      - uses: actions/checkout@v4', '        with:', ...with_.map((w) => `          ${w}`), '          persist-credentials: false'];

describe('permissions in other forms still make a job privileged', () => {
  it.each([
    ['write-all on the job', ['on: push', 'permissions: {}', 'jobs:', '  d:', '    permissions: write-all', '    steps:', '      - run: npm ci', ''], 7],
    ['write-all on the workflow', ['on: push', 'permissions: write-all', 'jobs:', '  d:', '    steps:', '      - run: npm ci', ''], 6],
    ['a flow mapping', ['on: push', 'permissions: {}', 'jobs:', '  d:', '    permissions: {id-token: write}', '    steps:', '      - run: npm ci', ''], 7],
    ['quoted key and value', ['on: push', 'permissions: {}', 'jobs:', '  d:', '    permissions:', `      "id-token": 'write'`, '    steps:', '      - run: npm ci', ''], 8],
    ['an alias', ['on: push', 'permissions: &p', '  id-token: write', 'jobs:', '  d:', '    permissions: *p', '    steps:', '      - run: npm ci', ''], 8],
  ])('%s', (_, lines, line) => {
    expectAt(lines.join('\n'), 'DSTS103', line, 'npm ci');
  });
});

describe('pull_request_target written as a string, a list, a mapping with types', () => {
  it.each(['pull_request_target', '[pull_request_target]', '{pull_request_target: {types: [opened, synchronize]}}'])('on: %s', (on) => {
    expectAt(job(on, [...checkout('ref: ${{ github.event.pull_request.head.sha }}'), '      - run: ./build.sh']), 'DSTS101', 14, './build.sh');
  });
});

describe("the pull request's head checked out through other spellings (DSTS101)", () => {
  it.each([
    ['head.sha', 'ref: ${{ github.event.pull_request.head.sha }}'],
    ['refs/pull/N/merge', 'ref: refs/pull/${{ github.event.number }}/merge'],
    ['github.head_ref', 'ref: ${{ github.head_ref }}'],
    ['the fork repository', 'repository: ${{ github.event.pull_request.head.repo.full_name }}'],
    ['merge_commit_sha', 'ref: ${{ github.event.pull_request.merge_commit_sha }}'],
    // GitHub reads expressions case-insensitively and accepts ['name'] for .name
    ["github.event['pull_request']['head']['sha']", "ref: ${{ github.event['pull_request']['head']['sha'] }}"],
    ['Head.Sha in another case', 'ref: ${{ github.event.pull_request.Head.Sha }}'],
    ['GITHUB.HEAD_REF', 'ref: ${{ GITHUB.HEAD_REF }}'],
    // the synchronize payload's `after` is the new head commit
    ['github.event.after', 'ref: ${{ github.event.after }}'],
    ['a ref built with format()', "ref: ${{ format('refs/{0}/{1}/head', 'pull', github.event.number) }}"],
    // action inputs are case-insensitive (INPUT_REF)
    ['Ref: as the input name', 'Ref: ${{ github.event.pull_request.head.sha }}'],
  ])('%s', (_, ref) => {
    expectAt(job(PRT, [...checkout(ref), '      - run: ./build.sh']), 'DSTS101', 14, './build.sh');
  });

  it('through env: indirection into ref:', () => {
    expectAt(job(PRT, [...checkout('ref: ${{ env.REF }}'), '      - run: ./build.sh'], ['    env:', '      REF: ${{ github.event.pull_request.head.sha }}']), 'DSTS101', 16, './build.sh');
  });

  it.each([
    ['gh pr checkout', 'gh pr checkout ${{ github.event.number }}'],
    ['git fetch origin pull/N/head', 'git fetch origin pull/${{ github.event.number }}/head:pr && git checkout pr'],
    ['git remote add of the fork', 'git remote add fork ${{ github.event.pull_request.head.repo.clone_url }} && git fetch fork'],
    ['gh pr diff | git apply', 'gh pr diff ${{ github.event.number }} | git apply'],
    ['curl of the diff_url | git apply', 'curl -sL ${{ github.event.pull_request.diff_url }} | git apply'],
    ['gh repo clone of the fork', 'gh repo clone ${{ github.event.pull_request.head.repo.full_name }} pr'],
  ])('in run: %s', (_, command) => {
    expectAt(job(PRT, [`      - run: ${command}`, '      - run: ./build.sh']), 'DSTS101', 11, './build.sh');
  });

  it('in run: git fetch "$SHA" with the head SHA passed through env:', () => {
    const text = job(PRT, ['      - env:', '          SHA: ${{ github.event.pull_request.head.sha }}', '        run: |', '          git fetch origin "$SHA"', '          git checkout FETCH_HEAD', '      - run: ./build.sh']);
    expectAt(text, 'DSTS101', 15, './build.sh');
  });

  it("then github-script require()s a file of the checkout", () => {
    const text = job(PRT, [...checkout('ref: ${{ github.event.pull_request.head.sha }}'), '      - uses: actions/github-script@v7', '        with:', "          script: require('./scripts/preview.js')(github)"]);
    expectAt(text, 'DSTS101', 14, 'actions/github-script@v7');
  });

  it('then an action installs its dependencies (pnpm/action-setup run_install)', () => {
    const text = job(PRT, [...checkout('ref: ${{ github.event.pull_request.head.sha }}'), '      - uses: pnpm/action-setup@v4', '        with:', '          run_install: true']);
    expectAt(text, 'DSTS101', 14, 'pnpm/action-setup@v4');
    expectAt(text, 'DSTS103', 16, 'true');
  });
});

describe('untrusted expressions in other spellings (DSTS104)', () => {
  it.each([
    ['no spaces', '${{github.event.pull_request.title}}'],
    ["['pull_request']['title']", "${{ github.event['pull_request']['title'] }}"],
    ["pull_request['title']", "${{ github.event.pull_request['title'] }}"],
    ['TITLE in capitals', '${{ github.event.pull_request.TITLE }}'],
    ['Github.Head_Ref', '${{ Github.Head_Ref }}'],
    ['toJSON(github.event)', '${{ toJSON(github.event) }}'],
    ['tojson in lower case', '${{ tojson(github.event) }}'],
    ['toJSON(github)', '${{ toJSON(github) }}'],
    ['toJSON of the head object', '${{ toJSON(github.event.pull_request.head) }}'],
    // GitHub's parser does not end an expression at a }} inside a string literal
    ["a '}}' string before the input", "${{ format('}}{0}', github.head_ref) }}"],
    ['the title before an edit', '${{ github.event.changes.title.from }}'],
    ["the fork's description", '${{ github.event.pull_request.head.repo.description }}'],
    ['join() of commit messages', '${{ join(github.event.commits.*.message) }}'],
  ])('%s', (_, expr) => {
    expectAt(job(PRT, [`      - run: echo "${expr}"`]), 'DSTS104', 10, expr);
  });

  it("in github-script's script:, also when the input is written Script:", () => {
    for (const key of ['script', 'Script']) {
      expectAt(job(PRT, ['      - uses: actions/github-script@v7', '        with:', `          ${key}: console.log('\${{ github.event.pull_request.title }}')`]), 'DSTS104', 12, '${{ github.event.pull_request.title }}');
    }
  });

  it('through a matrix include: entry', () => {
    expectAt(job(PRT, ['      - run: echo ${{ matrix.t }}'], ['    strategy:', '      matrix:', '        include:', '          - t: ${{ github.event.pull_request.title }}']), 'DSTS104', 14, '${{ matrix.t }}');
  });

  it("through a reusable workflow's inputs (and an env: inside it)", () => {
    const files = {
      'caller.yml': ['on: pull_request_target', 'permissions: {}', 'jobs:', '  c:', '    environment: e', '    permissions:', '      id-token: write', '    uses: ./.github/workflows/called.yml', '    with:', '      title: ${{ github.event.pull_request.title }}', ''].join('\n'),
      'called.yml': ['on:', '  workflow_call:', '    inputs:', '      title: {type: string}', 'jobs:', '  d:', '    env:', '      T: ${{ inputs.title }}', '    steps:', '      - run: echo "${{ inputs.title }}"', '      - run: echo "${{ env.T }}"', ''].join('\n'),
    };
    expectAt(files, 'DSTS104', 10, '${{ inputs.title }}', {}, 'called.yml');
    expectAt(files, 'DSTS104', 11, '${{ env.T }}', {}, 'called.yml');
  });

  it("through needs.build.outputs of a job that ran the pull request's code", () => {
    const text = [
      'on: pull_request_target', 'permissions: {}', 'jobs:', '  build:', '    permissions: {contents: read}', '    outputs:', '      title: ${{ steps.t.outputs.title }}', '    steps:',
      ...checkout('ref: ${{ github.event.pull_request.head.sha }}'), '      - id: t', '        run: ./build.sh',
      '  deploy:', '    needs: build', '    environment: e', '    permissions:', '      id-token: write', '    steps:', '      - run: echo "${{ needs.build.outputs.title }}"', '',
    ].join('\n');
    expectAt(text, 'DSTS104', 21, '${{ needs.build.outputs.title }}');
  });

  it("in a docker:// step's args:", () => {
    expectAt(job(PRT, ['      - uses: docker://alpine@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef', '        with:', '          args: sh -c "echo ${{ github.head_ref }}"']), 'DSTS104', 12, '${{ github.head_ref }}');
  });

  it("env: indirection, GitHub's recommended fix, stays clean", () => {
    const text = job(PRT, ['      - env:', '          TITLE: ${{ github.event.pull_request.title }}', '        run: echo "$TITLE"', '      - uses: actions/github-script@v7', '        env:', '          TITLE: ${{ github.event.pull_request.title }}', '        with:', '          script: console.log(process.env.TITLE)']);
    expect(errors(text)).toEqual([]);
  });
});

describe('workflow_run artifacts executed or sourced (DSTS102)', () => {
  const download = (...path: string[]) => ['      - uses: actions/download-artifact@v4', '        with:', '          name: a', ...path.map((p) => `          path: ${p}`)];
  it.each([
    ['bash x.sh', 'bash x.sh'],
    ['. ./env', '. ./env'],
    ['source ./env', 'source ./env'],
    ['eval "$(cat vars)"', 'eval "$(cat vars)"'],
    ['cat vars >> $GITHUB_ENV', 'cat vars >> $GITHUB_ENV'],
    ['unzip then run', 'unzip a.zip && ./run'],
    ['export $(cat .env | xargs)', 'export $(cat .env | xargs)'],
  ])('%s', (_, command) => {
    const text = job('workflow_run', [...download(), `      - run: ${command}`]);
    const f = errors(text).find((x) => x.rule === 'DSTS102');
    expect(f?.line).toBe(13);
  });

  it('eval of a file in the path: directory', () => {
    expectAt(job('workflow_run', [...download('site/'), '      - run: eval "$(cat site/vars)"']), 'DSTS102', 14, 'eval');
  });

  it('a download path written ${{ github.workspace }}, and one under ${{ runner.temp }} run as "$RUNNER_TEMP/…"', () => {
    expectAt(job('workflow_run', [...download('${{ github.workspace }}'), '      - run: bash deploy.sh']), 'DSTS102', 14, 'bash deploy.sh');
    expectAt(job('workflow_run', [...download('${{ runner.temp }}/art'), '      - run: bash "$RUNNER_TEMP/art/x.sh"']), 'DSTS102', 14, 'bash "$RUNNER_TEMP/art/x.sh"');
  });

  it("GitHub's own example: github-script downloadArtifact, unzip, then source", () => {
    const text = job('workflow_run', [
      '      - uses: actions/github-script@v7', '        with:', '          script: |',
      "            const d = await github.rest.actions.downloadArtifact({owner: 'a', repo: 'b', artifact_id: 1, archive_format: 'zip'});",
      "            require('fs').writeFileSync('pr.zip', Buffer.from(d.data));",
      '      - run: unzip pr.zip', '      - run: source ./env.sh',
    ]);
    expectAt(text, 'DSTS102', 16, 'source ./env.sh');
  });

  it('reading one value with $(cat …) into a variable is data, not execution', () => {
    expect(errors(job('workflow_run', [...download('site/'), '      - run: pr="$(cat site/.pr-number)"'])).filter((f) => f.rule === 'DSTS102')).toEqual([]);
  });
});

describe('caches in other forms (DSTS105)', () => {
  it.each([
    ['setup-node cache: npm', ['      - uses: actions/setup-node@v4', '        with:', '          cache: npm'], 12, 'npm'],
    ['actions/cache/restore', ['      - uses: actions/cache/restore@v4', '        with:', '          path: x', '          key: k'], 10, 'actions/cache/restore@v4'],
    ['Cache: as the input name', ['      - uses: actions/setup-node@v4', '        with:', '          Cache: npm'], 12, 'npm'],
    ['setup-ruby bundler-cache', ['      - uses: ruby/setup-ruby@v1', '        with:', '          bundler-cache: true'], 12, 'true'],
    ['setup-gradle (caches by default)', ['      - uses: gradle/actions/setup-gradle@v4'], 10, 'gradle/actions/setup-gradle@v4'],
    ['rust-cache', ['      - uses: Swatinem/rust-cache@v2'], 10, 'Swatinem/rust-cache@v2'],
    ['setup-uv enable-cache', ['      - uses: astral-sh/setup-uv@v6', '        with:', '          enable-cache: true'], 12, 'true'],
    ['a drop-in actions/cache', ['      - uses: buildjet/cache@v4', '        with:', '          path: x', '          key: k'], 10, 'buildjet/cache@v4'],
  ])('%s', (_, steps, line, text) => {
    expectAt(job('push', steps as string[]), 'DSTS105', line as number, text as string);
  });

  it('not when the cache is turned off', () => {
    expect(errors(job('push', ['      - uses: gradle/actions/setup-gradle@v4', '        with:', '          cache-disabled: true', '      - uses: astral-sh/setup-uv@v6', '        with:', '          enable-cache: false']))).toEqual([]);
  });
});

describe('installs and builds spelled differently (DSTS103)', () => {
  it.each([
    ['npm i', 'npm i'], ['npm install-test', 'npm install-test'], ['npm cit', 'npm cit'], ['npm clean-install', 'npm clean-install'], ['npm ic', 'npm ic'],
    ['npm inst', 'npm inst'], ['npm --prefix x ci', 'npm --prefix x ci'], ['CI=1 npm ci', 'npm ci'], ['env CI=1 npm ci', 'npm ci'], ['command npm ci', 'npm ci'],
    ['nohup npm ci', 'npm ci'], ['{ npm ci; }', 'npm ci'], ['yarn install --frozen-lockfile', 'yarn'], ['pnpm install', 'pnpm install'], ['bun install', 'bun install'],
    ['pip3 install -r r.txt', 'pip3 install'], ['python -m pip install .', 'python -m pip install'], ['python3.12 -m pip install .', 'python3.12 -m pip install'],
    ['pip3.12 install .', 'pip3.12 install'], ['pipx run x', 'pipx run'], ['poetry install', 'poetry install'], ['bundle install', 'bundle install'], ['bundle', 'bundle'],
    ['cargo build', 'cargo build'], ['cargo check', 'cargo check'], ['go build ./...', 'go build'], ['mvn -B package', 'mvn'], ['./gradlew build', './gradlew'],
    ['bash ./gradlew build', 'bash ./gradlew'], ['sh gradlew build', 'sh gradlew'], ['deno task build', 'deno task'],
  ])('%s', (command, at) => {
    expectAt(job('push', [`      - run: ${JSON.stringify(command)}`]), 'DSTS103', 10, at);
  });

  it('across a line continuation, in a folded scalar after &&, after cd … &&, in shell: bash {0}', () => {
    expectAt(job('push', ['      - run: |', '          npm \\', '            ci']), 'DSTS103', 11, 'npm');
    expectAt(job('push', ['      - run: >', '          echo hi &&', '          npm ci']), 'DSTS103', 12, 'npm ci');
    expectAt(job('push', ['      - run: |', '          set -e', '          cd site && npm i']), 'DSTS103', 12, 'npm i');
    expectAt(job('push', ['      - shell: bash {0}', '        run: npm ci']), 'DSTS103', 11, 'npm ci');
  });

  it('not for npm commands that run no package code, nor an assignment that reads a file', () => {
    expect(errors(job('push', ['      - run: npm --version && npm view deploy-sts version && npm whoami', '      - run: V="$(cat VERSION)"']))).toEqual([]);
  });
});

describe('reusable workflows', () => {
  const files = {
    'caller.yml': ['on: pull_request_target', 'permissions: {}', 'jobs:', '  c:', '    environment: e', '    permissions:', '      id-token: write', '    uses: acme/docs/.github/workflows/called.yml@0123456789abcdef0123456789abcdef01234567', ''].join('\n'),
    'called.yml': ['on: workflow_call', 'jobs:', '  d:', '    steps:', '      - run: npm ci', ''].join('\n'),
  };

  it("this repository's workflow called by its full name is checked with the caller's permissions (with --repository)", () => {
    expectAt(files, 'DSTS103', 5, 'npm ci', { repository: 'Acme/Docs' }, 'called.yml');
  });

  // Was open: without --repository the call was checked as a remote one (its pin only). The command now reads which
  // repository the clone came from (its origin remote), as actions/checkout leaves it in CI.
  it('… and without --repository, in a clone whose origin is that repository', async () => {
    const repo = tempDir('deploy-sts-origin-');
    onTestFinished(() => rmSync(repo, { recursive: true, force: true }));
    const workflows = join(repo, '.github', 'workflows');
    mkdirSync(workflows, { recursive: true });
    for (const [name, text] of Object.entries(files)) writeFileSync(join(workflows, name), text);
    execFileSync('git', ['init', '-q', repo]);
    execFileSync('git', ['-C', repo, 'remote', 'add', 'origin', 'https://x-access-token:ghs_secret@github.com/acme/docs.git']);
    let stdout = '';
    const status = await workflowsCheck({ dir: workflows, json: true }, { stdout: (t) => (stdout += t), stderr: () => undefined });
    expect(status).toBe(1);
    const report = JSON.parse(stdout) as { findings: { file: string; line: number; rule: string; severity: string }[] };
    expect(report.findings).toContainEqual(expect.objectContaining({ rule: 'DSTS103', severity: 'error', line: 5, file: expect.stringMatching(/called\.yml$/) }));
    expect(stdout).not.toContain('ghs_secret');
  });
});

describe('gates that do not gate (DSTS205, a warning)', () => {
  it('an environment named by an expression is no gate', () => {
    const text = job(PRT, ['      - run: echo hi']).replace('    environment: e', '    environment: preview-${{ github.event.number }}');
    const f = checkWorkflowTexts([{ file: 'w.yml', name: 'w.yml', text }]).findings.filter((x) => x.rule === 'DSTS205');
    expect(f.map((x) => [x.line, x.column, x.severity])).toEqual([[4, 3, 'warning']]);
  });
});

describe('suppressions', () => {
  it('a suppression inside a string of the script is not a comment: the finding stays', () => {
    expectAt(job('push', ['      - run: |', `          echo "# deploy-sts: ignore[DSTS103] looks fine"; npm ci`]), 'DSTS103', 11, 'npm ci');
    expectAt(job('push', ['      - run: |', `          echo '# deploy-sts: ignore[DSTS103] looks fine' && npm ci`]), 'DSTS103', 11, 'npm ci');
    expectAt(job('push', ['      - run: |', `          npm ci \\# deploy-sts: ignore[DSTS103] escaped, not a comment`]), 'DSTS103', 11, 'npm ci');
  });

  it('a real comment still suppresses, quotes in its reason or before it included', () => {
    expect(errors(job('push', [`      - run: npx --yes tool@1.2.3 deploy "site" # deploy-sts: ignore[DSTS103] the gateway's pinned tool`]))).toEqual([]);
  });
});

describe('hostile files', () => {
  const work = tempDir('deploy-sts-attack13-');
  afterAll(() => rmSync(work, { recursive: true, force: true }));
  const out = () => {
    const chunks: string[] = [];
    return { chunks, output: { stdout: (t: string) => chunks.push(t), stderr: (t: string) => chunks.push(t) } };
  };

  it('a dot-file workflow is checked (GitHub runs it)', async () => {
    const dir = join(work, 'dot');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, '.deploy.yml'), job('push', ['      - run: npm ci']));
    const { chunks, output } = out();
    expect(await workflowsCheck({ dir, root: work }, output)).toBe(1);
    expect(chunks.join('')).toMatch(/\.deploy\.yml:10:14: error DSTS103/);
  });

  it('a symbolic link is reported, not followed out of the directory', async () => {
    const dir = join(work, 'link');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(work, 'outside.yml'), 'on: push\npermissions: {}\njobs:\n  d:\n    steps:\n      - run: echo secret-outside\n');
    symlinkSync(join(work, 'outside.yml'), join(dir, 'deploy.yml'));
    const { chunks, output } = out();
    expect(await workflowsCheck({ dir, root: work }, output)).toBe(1);
    expect(chunks.join('')).toMatch(/deploy\.yml:1:1: error DSTS001 workflow-syntax: the file is a symbolic link/);
    expect(chunks.join('')).not.toContain('secret-outside');
  });

  it('a file that is not UTF-8, or nested too deep for the parser, fails closed', async () => {
    const dir = join(work, 'bad');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'latin1.yml'), Buffer.from('on: push\n# caf\xe9\n', 'latin1'));
    writeFileSync(join(dir, 'deep.yml'), `on: push\njobs:\n  d:\n    steps:\n      - run: ${'['.repeat(5000)}${']'.repeat(5000)}\n`);
    const { chunks, output } = out();
    expect(await workflowsCheck({ dir, root: work }, output)).toBe(1);
    expect(chunks.join('')).toMatch(/latin1\.yml:1:1: error DSTS001 workflow-syntax: the file is not valid UTF-8/);
    expect(chunks.join('')).toMatch(/deep\.yml:\d+:\d+: error DSTS001/);
  });

  it('aliases cannot blow up a matrix include', () => {
    const levels = ['  l0: &l0 ["${{ github.event.pull_request.title }}", x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 9; i++) levels.push(`  l${i}: &l${i} [${Array.from({ length: 9 }, () => `*l${i - 1}`).join(', ')}]`);
    const text = ['on: pull_request_target', 'permissions: {}', 'x:', ...levels, 'jobs:', '  d:', '    environment: e', '    permissions: {id-token: write}', '    strategy:', '      matrix:', '        include: [{t: *l8}, {t: *l8}, {t: *l8}]', '    steps:', '      - run: echo ${{ matrix.t }}', ''].join('\n');
    const started = process.hrtime.bigint();
    // (GitHub rejects the unknown top-level key x:; the checker still must finish and find the injection.)
    expect(errors(text).map((f) => [f.rule, f.line])).toContainEqual(['DSTS104', 21]);
    expect(Number(process.hrtime.bigint() - started) / 1e9).toBeLessThan(10);
  });

  it('terminal escapes and bidirectional overrides in quoted text are shown escaped in the text report', () => {
    const text = job('push', ['      - run: "npm ci \\e[2K\\e[1A \\u202e"']);
    const report = textReport(errors(text), 1);
    expect(report).not.toMatch(/[\u001b\u202e]/);
    expect(report).toContain('\\u{1b}[2K');
  });

  it('SARIF messages do not turn quoted text into an embedded link', () => {
    const text = job('push', ['      - run: npm ci [click here](https://evil.example)']);
    const sarif = toSarif(errors(text)) as { runs: { results: { message: { text: string } }[] }[] };
    const message = sarif.runs[0]!.results[0]!.message.text;
    expect(message).toContain('[click here\\](https://evil.example)');
  });
});
