/**
 * GitHub Actions expressions (`${{ … }}`) and which of their inputs an attacker controls.
 *
 * The untrusted inputs follow GitHub Security Lab's list ("Keeping your GitHub Actions and workflows secure: untrusted
 * input"): text a pull request author, commenter or pusher writes. Numbers, SHAs and ids are not on it, nor are
 * `workflow_dispatch` inputs (only people with write access can dispatch).
 */

export interface Expression {
  /** The whole `${{ … }}` as written. */
  text: string;
  /** What is inside, trimmed. */
  body: string;
  /** Offset in the string. */
  index: number;
}

export function expressionsIn(value: string): Expression[] {
  const out: Expression[] = [];
  const re = /\$\{\{([\s\S]*?)\}\}/g;
  for (let m = re.exec(value); m !== null; m = re.exec(value)) out.push({ text: m[0], body: m[1]!.trim(), index: m.index });
  return out;
}

/** `.*`, `[0]`, `['x']` between segments. */
const ANY = String.raw`(?:\.\*|\[[^\]]*\]|\.\d+)`;

const UNTRUSTED_SOURCES = [
  String.raw`github\.event\.issue\.(?:title|body)`,
  String.raw`github\.event\.pull_request\.(?:title|body|head\.ref|head\.label|head\.repo\.default_branch)`,
  String.raw`github\.event\.discussion\.(?:title|body)`,
  String.raw`github\.event\.comment\.body`,
  String.raw`github\.event\.review\.body`,
  String.raw`github\.event\.review_comment\.body`,
  String.raw`github\.event\.pages${ANY}\.page_name`,
  String.raw`github\.event\.commits${ANY}\.(?:message|author\.email|author\.name)`,
  String.raw`github\.event\.head_commit\.(?:message|author\.email|author\.name|committer\.email|committer\.name)`,
  String.raw`github\.event\.workflow_run\.(?:head_branch|display_title|head_commit\.(?:message|author\.email|author\.name|committer\.email|committer\.name))`,
  String.raw`github\.event\.workflow_run\.pull_requests${ANY}\.head\.ref`,
  String.raw`github\.head_ref`,
];
const UNTRUSTED = new RegExp(String.raw`(?<![\w.])(?:${UNTRUSTED_SOURCES.join('|')})(?![\w])`);
/** `toJSON(github.event)` or of a whole pull request, issue, comment …: dumps attacker text. */
const WHOLE_OBJECT = /toJSON\(\s*github\.event(?:\.(?:pull_request|issue|comment|review|review_comment|discussion|head_commit|commits|workflow_run))?\s*\)/;

/** The untrusted input an expression body reads, if any (as written), given the env and matrix keys known to carry one. */
export function untrustedInput(body: string, tainted: { env: ReadonlySet<string>; matrix: ReadonlySet<string> } = { env: new Set(), matrix: new Set() }): string | undefined {
  const direct = UNTRUSTED.exec(body) ?? WHOLE_OBJECT.exec(body);
  if (direct) return direct[0];
  for (const m of body.matchAll(/(?<![\w.])(env|matrix)\.([A-Za-z_][\w-]*)/g)) {
    if ((m[1] === 'env' ? tainted.env : tainted.matrix).has(m[2]!)) return m[0];
  }
  return undefined;
}

/** True when a string holds an expression that reads untrusted input. */
export function carriesUntrusted(value: string): boolean {
  return expressionsIn(value).some((e) => untrustedInput(e.body) !== undefined);
}
