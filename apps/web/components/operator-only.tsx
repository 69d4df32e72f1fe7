'use client'
import type { ReactNode } from 'react'
import { useFleetLive } from '@/lib/live'
import { useMe } from '@/lib/session'
import { Panel } from './ui'

function FleetLive() {
  useFleetLive(true)
  return null
}

/** Platform pages: operators only, with the fleet change stream. */
export function OperatorOnly({ children }: { children: ReactNode }) {
  const me = useMe()
  if (!me.user.operator)
    return (
      <Panel className="mx-auto mt-10 max-w-lg" bodyClassName="p-6 text-sm text-slate-600">
        <h1 className="mb-2 text-base font-semibold text-slate-900">Operators only</h1>
        This page is for platform operators.
      </Panel>
    )
  return (
    <>
      <FleetLive />
      {children}
    </>
  )
}
