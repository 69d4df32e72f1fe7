/** 1500 -> "1.5 cores", 250 -> "250m" */
export function fmtCpu(millis: number): string {
  if (millis >= 1000) {
    const cores = millis / 1000
    return `${Number.isInteger(cores) ? cores : cores.toFixed(cores >= 10 ? 0 : 1)} ${cores === 1 ? 'core' : 'cores'}`
  }
  return `${millis}m`
}

/** MiB -> "64 MiB", "1.5 GiB" */
export function fmtMem(mb: number): string {
  if (mb >= 1024 * 1024) return `${trim(mb / 1024 / 1024)} TiB`
  if (mb >= 1024) return `${trim(mb / 1024)} GiB`
  return `${mb} MiB`
}

function trim(n: number): string {
  return Number.isInteger(n) ? String(n) : n.toFixed(n >= 10 ? 0 : 1)
}

export function fmtNum(n: number): string {
  return n.toLocaleString('en-US')
}

/** "3s ago", "5m ago", "2h ago", "4d ago", or "in 3h" for the future. */
export function relTime(date: Date | string | number, now: number): string {
  const t = new Date(date).getTime()
  let s = Math.round((now - t) / 1000)
  // Clocks of browser and server differ a little: a few seconds "in the future" is now.
  if (s < 1 && s > -5) return 'just now'
  const future = s < 0
  s = Math.abs(s)
  let v: string
  if (s < 60) v = `${s}s`
  else if (s < 3600) v = `${Math.floor(s / 60)}m`
  else if (s < 86400) v = `${Math.floor(s / 3600)}h`
  else if (s < 86400 * 60) v = `${Math.floor(s / 86400)}d`
  else v = `${Math.floor(s / 86400 / 30)}mo`
  return future ? `in ${v}` : `${v} ago`
}

export function fmtDateTime(date: Date | string | number): string {
  const d = new Date(date)
  return d.toLocaleString('en-GB', { year: 'numeric', month: 'short', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit' })
}

export function shortId(id: string): string {
  return id.slice(0, 8)
}

/** Bytes -> "512 B", "12.3 KiB", "4.0 MiB", "1.2 GiB" */
export function fmtBytes(n: number): string {
  if (n < 1024) return `${Math.round(n)} B`
  const units = ['KiB', 'MiB', 'GiB', 'TiB']
  let v = n / 1024
  let u = 0
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return `${v.toFixed(v >= 100 ? 0 : 1)} ${units[u]}`
}

/** Milliseconds -> "412 ms", "3.4 s", "2m 05s" */
export function fmtDuration(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`
  const s = Math.round(ms / 1000)
  return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, '0')}s`
}
