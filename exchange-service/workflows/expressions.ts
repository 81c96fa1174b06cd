/**
 * GitHub Actions expressions (`${{ … }}`) and which of their inputs an attacker controls.
 *
 * The untrusted inputs follow GitHub Security Lab's list ("Keeping your GitHub Actions and workflows secure: untrusted
 * input"): text a pull request author, commenter or pusher writes. Numbers, SHAs and ids are not on it, nor are
 * `workflow_dispatch` inputs (only people with write access can dispatch).
 *
 * GitHub reads an expression case-insensitively (`GitHub.Head_Ref`, `TOJSON(…)`) and accepts `a['b']` for `a.b`, and
 * a `}}` inside a single-quoted string does not close the expression: the body is normalised before it is matched.
 */

export interface Expression {
  /** The whole `${{ … }}` as written. */
  text: string;
  /** What is inside, trimmed. */
  body: string;
  /** Offset in the string. */
  index: number;
}

/** Every `${{ … }}` in a string, ended by the first `}}` outside a single-quoted string (as GitHub's parser does). */
export function expressionsIn(value: string): Expression[] {
  const out: Expression[] = [];
  for (let start = value.indexOf('${{'); start >= 0; start = value.indexOf('${{', start + 3)) {
    let inString = false;
    let end = -1;
    for (let i = start + 3; i < value.length; i++) {
      if (value[i] === "'") inString = !inString;
      else if (!inString && value[i] === '}' && value[i - 1] === '}' && i - 1 >= start + 3) {
        end = i + 1;
        break;
      }
    }
    if (end < 0) break;
    const text = value.slice(start, end);
    out.push({ text, body: text.slice(3, -2).trim(), index: start });
    start = end - 3;
  }
  return out;
}

/** The body as GitHub reads it: lower-cased, `['name']` written as `.name`. */
export function normaliseExpression(body: string): string {
  return body.toLowerCase().replace(/\[\s*'([\w-]+)'\s*\]/g, '.$1');
}

/** `.*`, `[0]` between segments. */
const ANY = String.raw`(?:\.\*|\[[^\]]*\]|\.\d+)`;

/** Attacker-written text; `*` stands for any array index. */
const UNTRUSTED_PATHS = [
  'github.event.issue.title',
  'github.event.issue.body',
  'github.event.pull_request.title',
  'github.event.pull_request.body',
  'github.event.pull_request.head.ref',
  'github.event.pull_request.head.label',
  'github.event.pull_request.head.repo.default_branch',
  'github.event.pull_request.head.repo.description',
  'github.event.pull_request.head.repo.homepage',
  'github.event.changes.title.from',
  'github.event.changes.body.from',
  'github.event.discussion.title',
  'github.event.discussion.body',
  'github.event.comment.body',
  'github.event.review.body',
  'github.event.review_comment.body',
  'github.event.pages.*.page_name',
  'github.event.commits.*.message',
  'github.event.commits.*.author.email',
  'github.event.commits.*.author.name',
  'github.event.head_commit.message',
  'github.event.head_commit.author.email',
  'github.event.head_commit.author.name',
  'github.event.head_commit.committer.email',
  'github.event.head_commit.committer.name',
  'github.event.workflow_run.head_branch',
  'github.event.workflow_run.display_title',
  'github.event.workflow_run.head_commit.message',
  'github.event.workflow_run.head_commit.author.email',
  'github.event.workflow_run.head_commit.author.name',
  'github.event.workflow_run.head_commit.committer.email',
  'github.event.workflow_run.head_commit.committer.name',
  'github.event.workflow_run.head_repository.description',
  'github.event.workflow_run.pull_requests.*.head.ref',
  'github.head_ref',
];
const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const UNTRUSTED = new RegExp(String.raw`(?<![\w.])(?:${UNTRUSTED_PATHS.map((p) => p.split('.*').map(escape).join(ANY)).join('|')})(?![\w-])`);
/** A function of a whole object that holds untrusted text (`toJSON(github.event)`, `toJSON(github.event.pull_request.head)`, `join(…)`). */
const WHOLE_OBJECT = /\b(tojson|join|format)\(\s*(github(?:\.[\w-]+|\.\*|\[[^\]]*\])*)\s*[,)]/g;

function holdsUntrusted(path: string): boolean {
  const p = path.replace(/\[[^\]]*\]/g, '.*').replace(/\.\d+(?=\.|$)/g, '.*');
  return UNTRUSTED_PATHS.some((u) => u === p || u.startsWith(`${p}.`));
}

/** The untrusted input an expression body reads, if any (normalised), given the env, matrix and input names known to carry one. */
export function untrustedInput(
  body: string,
  tainted: { env: ReadonlySet<string>; matrix: ReadonlySet<string>; inputs?: ReadonlySet<string> } = { env: new Set(), matrix: new Set() },
): string | undefined {
  const normal = normaliseExpression(body);
  const direct = UNTRUSTED.exec(normal);
  if (direct) return direct[0];
  for (const m of normal.matchAll(WHOLE_OBJECT)) if (holdsUntrusted(m[2]!)) return `${m[1]}(${m[2]})`;
  const lower = (names: ReadonlySet<string> | undefined) => new Set([...(names ?? [])].map((n) => n.toLowerCase()));
  const sets = { env: lower(tainted.env), matrix: lower(tainted.matrix), inputs: lower(tainted.inputs) };
  for (const m of normal.matchAll(/(?<![\w.])(env|matrix|inputs)\.([a-z_][\w-]*)/g)) {
    if (sets[m[1] as 'env' | 'matrix' | 'inputs'].has(m[2]!)) return m[0];
  }
  return undefined;
}

/** True when a string holds an expression that reads untrusted input. */
export function carriesUntrusted(value: string): boolean {
  return expressionsIn(value).some((e) => untrustedInput(e.body) !== undefined);
}
