/** Where the service's signing keys are kept, and the shape they are kept in. */

/** A signing key as stored: private JWK (with kid) and lifecycle times (unix seconds). */
export interface StoredKey {
  kid: string;
  alg: string;
  privateJwk: string;
  createdAt: number;
  /** When it stopped signing (a newer key became active); null while active. */
  retiredAt: number | null;
}

/** Where signing keys live: files (mode 0600) in the data directory, or the database for replicas. */
export interface KeyStore {
  list(): Promise<StoredKey[]>;
  save(key: StoredKey): Promise<void>;
  retire(kid: string, at: number): Promise<void>;
  delete(kid: string): Promise<void>;
}
