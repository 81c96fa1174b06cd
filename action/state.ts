/** Names of the state the main step saves for the post step: the token to revoke and where. Nothing else. */
export const STATE_TOKEN = 'token';
export const STATE_URL = 'url';
