/** Time is injected so control loops and expiry can be tested without waiting. */
export interface Clock {
  now(): Date
}
export const systemClock: Clock = { now: () => new Date() }
