/**
 * Time source and timer provider. Injected so that probing and call-lifetime
 * bookkeeping can be driven deterministically in tests.
 */
export interface Clock {
  /** Milliseconds on a monotonic-enough scale; only differences are used. */
  now(): number
  /** Schedule `fn` once after `ms` milliseconds; returns a handle for {@link Clock.clearTimeout}. */
  setTimeout(fn: () => void, ms: number): unknown
  /** Cancel a timer returned by {@link Clock.setTimeout}; unknown or fired handles are ignored. */
  clearTimeout(handle: unknown): void
}

/**
 * The real clock. `now()` is milliseconds since the epoch that never goes
 * backwards (performance.timeOrigin + performance.now(), not Date.now(), which
 * NTP can step), so probe latencies are true and probe times readable. Timers
 * are unref'd: probing alone must not keep a process alive that is otherwise
 * shutting down.
 */
export const SYSTEM_CLOCK: Clock = Object.freeze({
  now: () => performance.timeOrigin + performance.now(),
  setTimeout (fn: () => void, ms: number): unknown {
    const timer = setTimeout(fn, ms)
    timer.unref()
    return timer
  },
  clearTimeout (handle: unknown): void {
    clearTimeout(handle as NodeJS.Timeout)
  }
})
