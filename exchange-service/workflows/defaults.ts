/** Where `deploy-sts workflows check` looks when no directory is given (apart, so the CLI names it in `--help` without loading the checker). */
export const DEFAULT_WORKFLOWS_DIR = '.github/workflows';
