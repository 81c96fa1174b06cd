/** The successful answer of `POST /token`: RFC 8693 §2.2.1, plus what the Action shows (site, context, rule). */
import type { ACCESS_TOKEN_TYPE } from '../../shared/wire.js';
import type { Context } from '../policy/types.js';

export interface TokenResponse {
  access_token: string;
  issued_token_type: typeof ACCESS_TOKEN_TYPE;
  token_type: 'Bearer';
  expires_in: number;
  scope: string;
  site: string;
  context: Context;
  rule: string;
}
