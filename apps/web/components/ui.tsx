'use client'
import clsx from 'clsx'
import Link from 'next/link'
import { useState, type ButtonHTMLAttributes, type ReactNode } from 'react'
import { errorMessage } from '@/lib/errors'
import { fmtDateTime, relTime } from '@/lib/format'
import { useNow } from '@/lib/use-now'

export { clsx }

type Variant = 'primary' | 'secondary' | 'danger' | 'ghost'
const variants: Record<Variant, string> = {
  primary: 'bg-slate-900 text-white hover:bg-slate-700 border-slate-900 disabled:bg-slate-400 disabled:border-slate-400',
  secondary: 'bg-white text-slate-800 hover:bg-slate-50 border-slate-300 disabled:text-slate-400',
  danger: 'bg-red-600 text-white hover:bg-red-500 border-red-600 disabled:bg-red-300 disabled:border-red-300',
  ghost: 'bg-transparent text-slate-600 hover:bg-slate-100 hover:text-slate-900 border-transparent disabled:text-slate-300',
}

export function Button({
  variant = 'secondary',
  size = 'md',
  className,
  ...props
}: ButtonHTMLAttributes<HTMLButtonElement> & { variant?: Variant; size?: 'sm' | 'md' }) {
  return (
    <button
      type="button"
      {...props}
      className={clsx(
        'inline-flex items-center justify-center gap-1.5 whitespace-nowrap rounded-md border font-medium shadow-xs transition-colors disabled:cursor-not-allowed',
        size === 'sm' ? 'h-7 px-2.5 text-xs' : 'h-8 px-3 text-sm',
        variants[variant],
        className,
      )}
    />
  )
}

export function ButtonLink({ href, variant = 'secondary', className, children, ...rest }: { href: string; variant?: Variant; className?: string; children: ReactNode; 'data-testid'?: string }) {
  return (
    <Link
      href={href}
      {...rest}
      className={clsx('inline-flex h-8 items-center justify-center gap-1.5 whitespace-nowrap rounded-md border px-3 text-sm font-medium shadow-xs transition-colors', variants[variant], className)}
    >
      {children}
    </Link>
  )
}

export const inputBase =
  'block rounded-md border border-slate-300 bg-white px-2.5 py-1.5 text-sm text-slate-900 shadow-xs placeholder:text-slate-400 focus:border-slate-500 focus:outline-none focus:ring-2 focus:ring-slate-200 disabled:bg-slate-50 disabled:text-slate-500 aria-[invalid=true]:border-red-400 aria-[invalid=true]:ring-red-100'
export const inputCls = `${inputBase} w-full`

export function Field({ label, error, hint, children, className, htmlFor }: { label: ReactNode; error?: string | undefined; hint?: ReactNode; children: ReactNode; className?: string; htmlFor?: string }) {
  return (
    <div className={clsx('min-w-0', className)}>
      <label htmlFor={htmlFor} className="mb-1 block text-xs font-medium text-slate-700">
        {label}
      </label>
      {children}
      {error ? (
        <p className="mt-1 text-xs text-red-600" role="alert" data-testid="field-error">
          {error}
        </p>
      ) : hint ? (
        <p className="mt-1 text-xs text-slate-500">{hint}</p>
      ) : null}
    </div>
  )
}

export function PageHeader({ title, subtitle, actions, badge }: { title: ReactNode; subtitle?: ReactNode; actions?: ReactNode; badge?: ReactNode }) {
  return (
    <div className="mb-5 flex flex-wrap items-end justify-between gap-3">
      <div className="min-w-0">
        <div className="flex items-center gap-2.5">
          <h1 className="truncate text-xl font-semibold tracking-tight text-slate-900">{title}</h1>
          {badge}
        </div>
        {subtitle ? <div className="mt-0.5 text-sm text-slate-500">{subtitle}</div> : null}
      </div>
      {actions ? <div className="flex items-center gap-2">{actions}</div> : null}
    </div>
  )
}

export function Panel({ title, actions, children, className, bodyClassName, testId }: { title?: ReactNode; actions?: ReactNode; children: ReactNode; className?: string; bodyClassName?: string; testId?: string }) {
  return (
    <section className={clsx('rounded-lg border border-slate-200 bg-white shadow-xs', className)} data-testid={testId}>
      {title || actions ? (
        <header className="flex items-center justify-between gap-3 border-b border-slate-200 px-4 py-2.5">
          <h2 className="text-sm font-semibold text-slate-800">{title}</h2>
          {actions ? <div className="flex items-center gap-2">{actions}</div> : null}
        </header>
      ) : null}
      <div className={bodyClassName}>{children}</div>
    </section>
  )
}

/** Table cell classes: dense rows, tabular numbers. */
export const tableCls = 'w-full text-left text-sm tabular-nums'
export const theadCls = 'border-b border-slate-200 bg-slate-50/80 text-[11px] font-semibold uppercase tracking-wide text-slate-500'
export const thCls = 'px-3 py-2 font-semibold whitespace-nowrap first:pl-4 last:pr-4'
export const tdCls = 'px-3 py-2 align-middle first:pl-4 last:pr-4'
export const trCls = 'border-b border-slate-100 last:border-0 hover:bg-slate-50/60'

export function EmptyRow({ cols, children }: { cols: number; children: ReactNode }) {
  return (
    <tr>
      <td colSpan={cols} className="px-4 py-8 text-center text-sm text-slate-500">
        {children}
      </td>
    </tr>
  )
}

const tones = {
  green: 'bg-emerald-50 text-emerald-700 ring-emerald-600/20',
  amber: 'bg-amber-50 text-amber-800 ring-amber-600/25',
  red: 'bg-red-50 text-red-700 ring-red-600/20',
  gray: 'bg-slate-100 text-slate-600 ring-slate-500/20',
  blue: 'bg-sky-50 text-sky-700 ring-sky-600/20',
  violet: 'bg-violet-50 text-violet-700 ring-violet-600/20',
} as const
const dots = { green: 'bg-emerald-500', amber: 'bg-amber-500', red: 'bg-red-500', gray: 'bg-slate-400', blue: 'bg-sky-500', violet: 'bg-violet-500' } as const
export type Tone = keyof typeof tones

export function Badge({ tone = 'gray', children, dot = false, pulse = false, className, ...rest }: { tone?: Tone; children: ReactNode; dot?: boolean; pulse?: boolean; className?: string; title?: string; [data: `data-${string}`]: string | undefined }) {
  return (
    <span {...rest} className={clsx('inline-flex items-center gap-1.5 whitespace-nowrap rounded-full px-2 py-0.5 text-xs font-medium ring-1 ring-inset', tones[tone], className)}>
      {dot ? <span className={clsx('size-1.5 rounded-full', dots[tone], pulse && 'animate-pulse')} /> : null}
      {children}
    </span>
  )
}

export function stateTone(state: string): Tone {
  switch (state) {
    case 'running':
    case 'ready':
      return 'green'
    case 'pending':
    case 'starting':
    case 'stopping':
    case 'deploying':
    case 'scaling':
    case 'deleting':
      return 'amber'
    case 'failed':
    case 'not_ready':
    case 'degraded':
      return 'red'
    default:
      return 'gray'
  }
}

export function StateBadge({ state, label, testId, tone: forced }: { state: string; label?: string; testId?: string; tone?: Tone }) {
  const tone = forced ?? stateTone(state)
  return (
    <Badge tone={tone} dot pulse={tone === 'amber'} data-testid={testId} data-state={state}>
      {label ?? state.replace('_', ' ')}
    </Badge>
  )
}

/** A used-of-total bar; turns amber above 75 %, red above 90 %. */
export function UsageBar({ used, total, className, tone }: { used: number; total: number; className?: string; tone?: 'auto' | 'slate' | 'sky' }) {
  const pct = total > 0 ? Math.min(100, (used / total) * 100) : used > 0 ? 100 : 0
  const color =
    tone === 'sky' ? 'bg-sky-500' : tone === 'slate' ? 'bg-slate-500' : pct >= 90 ? 'bg-red-500' : pct >= 75 ? 'bg-amber-500' : 'bg-emerald-500'
  return (
    <div className={clsx('h-1.5 w-full overflow-hidden rounded-full bg-slate-200', className)} role="meter" aria-valuenow={used} aria-valuemin={0} aria-valuemax={total}>
      <div className={clsx('h-full rounded-full transition-[width] duration-500', color)} style={{ width: `${pct}%` }} />
    </div>
  )
}

export function ErrorBox({ error, title, className }: { error: unknown; title?: string; className?: string }) {
  if (!error) return null
  return (
    <div role="alert" data-testid="error" className={clsx('rounded-md border border-red-200 bg-red-50 px-3 py-2 text-sm text-red-800', className)}>
      {title ? <span className="font-semibold">{title}: </span> : null}
      {errorMessage(error)}
    </div>
  )
}

export function Loading({ label = 'Loading…' }: { label?: string }) {
  return (
    <div className="flex items-center gap-2 px-4 py-6 text-sm text-slate-500">
      <span className="size-3.5 animate-spin rounded-full border-2 border-slate-300 border-t-slate-600" />
      {label}
    </div>
  )
}

/** "3s ago", re-rendered every second; the exact time on hover. */
export function RelTime({ date, className }: { date: Date | string | null | undefined; className?: string }) {
  const now = useNow()
  if (!date) return <span className={clsx('text-slate-400', className)}>—</span>
  return (
    <time dateTime={new Date(date).toISOString()} title={fmtDateTime(date)} className={clsx('whitespace-nowrap', className)}>
      {now === null ? '' : relTime(date, now)}
    </time>
  )
}

export function Mono({ children, className, title, ...rest }: { children: ReactNode; className?: string; title?: string; 'data-testid'?: string }) {
  return (
    <code {...rest} title={title} className={clsx('font-mono text-[12px] text-slate-700', className)}>
      {children}
    </code>
  )
}

/** A button that asks once more before doing something destructive. */
export function ConfirmButton({
  label,
  confirmLabel,
  question,
  onConfirm,
  pending,
  size = 'md',
  testId,
}: {
  label: ReactNode
  confirmLabel?: ReactNode
  question: ReactNode
  onConfirm: () => void
  pending?: boolean
  size?: 'sm' | 'md'
  testId?: string
}) {
  const [asking, setAsking] = useState(false)
  if (!asking)
    return (
      <Button variant="secondary" size={size} className="text-red-700 hover:bg-red-50" onClick={() => setAsking(true)} data-testid={testId}>
        {label}
      </Button>
    )
  return (
    <span className="inline-flex items-center gap-2 rounded-md bg-red-50 py-0.5 pl-2.5 pr-0.5 ring-1 ring-red-200">
      <span className="text-xs text-red-800">{question}</span>
      <Button
        variant="danger"
        size={size}
        disabled={pending}
        onClick={() => {
          onConfirm()
        }}
        data-testid={testId ? `${testId}-confirm` : undefined}
      >
        {pending ? 'Working…' : (confirmLabel ?? label)}
      </Button>
      <Button variant="ghost" size={size} onClick={() => setAsking(false)}>
        Cancel
      </Button>
    </span>
  )
}

export function KV({ items, className }: { items: [ReactNode, ReactNode][]; className?: string }) {
  return (
    <dl className={clsx('grid grid-cols-[max-content_1fr] gap-x-6 gap-y-2 text-sm', className)}>
      {items.map(([k, v], i) => (
        <div key={i} className="contents">
          <dt className="text-slate-500">{k}</dt>
          <dd className="min-w-0 break-words text-slate-900">{v}</dd>
        </div>
      ))}
    </dl>
  )
}

export function WarnIcon({ className = 'size-3.5' }: { className?: string }) {
  return (
    <svg viewBox="0 0 20 20" fill="currentColor" className={`${className} shrink-0`} aria-hidden="true">
      <path d="M10 2 1 18h18L10 2zm-1 6h2v5H9V8zm0 6h2v2H9v-2z" />
    </svg>
  )
}
