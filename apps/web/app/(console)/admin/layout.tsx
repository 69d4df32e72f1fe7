'use client'
import type { ReactNode } from 'react'
import { OperatorOnly } from '@/components/operator-only'

export default function Layout({ children }: { children: ReactNode }) {
  return <OperatorOnly>{children}</OperatorOnly>
}
