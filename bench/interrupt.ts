/**
 * Ctrl-C (or a timeout's SIGTERM) during a benchmark: Node exits at once on these signals and
 * skips the `finally` that stops agents, instances, namespaces and databases (bench:lb left
 * 200 sandboxed replicas and their namespaces). Returns the cleanup to call from that
 * `finally`: it runs once, whether the run ends or a signal ends it (then exit 130).
 */
export function cleanupOnInterrupt(cleanup: () => Promise<void>): () => Promise<void> {
  let running: Promise<void> | null = null
  const run = () => (running ??= cleanup())
  for (const signal of ['SIGINT', 'SIGTERM'] as const)
    process.once(signal, () => {
      process.stderr.write(`\n${signal}: cleaning up before exiting\n`)
      void run()
        .catch((err) => process.stderr.write(`cleanup failed: ${(err as Error).message}\n`))
        .finally(() => process.exit(130))
    })
  return run
}
