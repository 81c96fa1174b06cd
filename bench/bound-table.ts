/** The bound's one table on PostgreSQL, created by the benchmark before the bound processes start (they share it). */
export const BOUND_TABLE_SQL = `CREATE TABLE IF NOT EXISTS audit (id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, time BIGINT, site TEXT,
  repository TEXT, subject_jti TEXT, token_jti TEXT, detail TEXT)`;
