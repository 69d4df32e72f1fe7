'use client'
import Link from 'next/link'
import { SchedulerPanel } from '@/components/scheduler'
import { PageHeader } from '@/components/ui'

export default function SchedulerPage() {
  return (
    <>
      <title>Scheduler · Alveary</title>
      <PageHeader
        title="Scheduler"
        subtitle={
          <>
            What the scheduler placed and what waits, per tenant queue. Placement reasons show on each pending instance; node capacity on{' '}
            <Link href="/ops/nodes" className="underline hover:text-slate-700">
              Nodes
            </Link>
            .
          </>
        }
      />
      <SchedulerPanel />
    </>
  )
}
