/**
 * Bounded building blocks for frame fields. Every value an agent sends ends up in a shared
 * statement (group commits): a value the database would refuse must be refused here, for
 * that one connection, before it can fail a batch that carries other nodes' writes.
 */
import { z } from 'zod'

/** Counters and generations: int4 columns; realistically far below 2^31. */
export const ZCounter = z.number().int().min(0).max(2_147_483_647)
/** CPU of a node or an instance, in millicores (a 10,000-core machine at most). */
export const ZMillicores = z.number().int().min(0).max(10_000_000)
/** Memory of a node or an instance, in MiB (100 TiB at most). */
export const ZMegabytes = z.number().int().min(0).max(100_000_000)
/** Linux pid_max is at most 2^22. */
export const ZPid = z.number().int().min(1).max(4_194_304)
/** A wait status (0-255, 128+signal); some engines report -1 for "unknown". */
export const ZExitCode = z.number().int().min(-255).max(255)
/** Milliseconds in a server setting (one day at most). */
export const ZIntervalMs = z.number().int().min(1).max(86_400_000)

/** Text stored in PostgreSQL, which refuses NUL characters in text. */
export const zText = (max: number) => z.string().max(max).refine((s) => !s.includes('\u0000'), 'must not contain NUL characters')

/** An ISO timestamp of this era (PostgreSQL and Date both handle it). */
export const ZTimestamp = z
  .string()
  .datetime()
  .refine((s) => {
    const y = Number(s.slice(0, 4))
    return y >= 2000 && y < 2200
  }, 'timestamp out of range (years 2000-2199)')
