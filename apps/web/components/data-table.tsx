'use client'
import type { ReactNode } from 'react'
import { clsx, EmptyRow, ErrorBox, Loading, tableCls, theadCls, thCls } from './ui'

export interface Column {
  label?: ReactNode
  /** Added to the header cell's classes: `text-right`, `w-12`, … */
  className?: string
  title?: string
}

/**
 * A dense, horizontally scrollable table: header cells from `columns`, the rows as children.
 * With `query`, its error (or `error`, when given) is shown above, and a spinner instead of the table while it is pending.
 * `empty`, when given, is shown as a row across all columns: pass it only when there are no rows.
 */
export function DataTable({
  query,
  error = query?.error,
  testId,
  columns,
  empty,
  children,
}: {
  query?: { error: unknown; isPending: boolean }
  error?: unknown
  testId: string
  columns: Column[]
  empty?: ReactNode
  children: ReactNode
}) {
  return (
    <>
      <ErrorBox error={error} className="m-3" />
      {query?.isPending ? (
        <Loading />
      ) : (
        <div className="overflow-x-auto">
          <table className={tableCls} data-testid={testId}>
            <thead className={theadCls}>
              <tr>
                {columns.map((c, i) => (
                  <th key={i} className={clsx(thCls, c.className)} title={c.title}>
                    {c.label}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {empty ? <EmptyRow cols={columns.length}>{empty}</EmptyRow> : null}
              {children}
            </tbody>
          </table>
        </div>
      )}
    </>
  )
}
