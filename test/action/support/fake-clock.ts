/**
 * A clock for retry tests: `sleep` returns at once and moves the clock on by what was asked, so deadlines and
 * waits can be tested without waiting. Pass `now` and `sleep` in the retry policy and `now` to the deadline.
 */
export interface FakeClock {
  now: () => number;
  sleep: (ms: number) => Promise<void>;
  /** Every wait asked for, in order. */
  sleeps: number[];
}

export function fakeClock(start = Date.parse('2030-01-01T00:00:00Z')): FakeClock {
  let time = start;
  const clock: FakeClock = {
    now: () => time,
    sleep: async (ms) => {
      clock.sleeps.push(ms);
      time += ms;
    },
    sleeps: [],
  };
  return clock;
}
