'use client'
import { useState } from 'react'
import { Button, Mono } from '@/components/ui'

/** The page an invitation link opens; the secret rides in the fragment, so it never reaches a server log. */
export function inviteUrl(token: string): string {
  return `${window.location.origin}/invite#${token}`
}

/** The link of a new invitation, shown once, with a copy button. */
export function InviteLink({ email, token }: { email: string; token: string }) {
  const [copied, setCopied] = useState(false)
  const url = inviteUrl(token)
  return (
    <div className="rounded-md bg-emerald-50 p-3 text-sm ring-1 ring-emerald-200" data-testid="invitation-created">
      <p className="mb-2 text-emerald-900">
        Invitation for <b>{email}</b> ready. Send them this link: it is shown only now, works once, and expires in 7 days.
      </p>
      <div className="flex items-center gap-2">
        <Mono className="min-w-0 flex-1 break-all rounded bg-white px-2 py-1 ring-1 ring-emerald-200" data-testid="invite-link">
          {url}
        </Mono>
        <Button
          size="sm"
          onClick={() => {
            void navigator.clipboard?.writeText(url).then(() => setCopied(true))
          }}
        >
          {copied ? 'Copied' : 'Copy'}
        </Button>
      </div>
      <p className="mt-2 text-xs text-slate-600">If they already have an account, they can also accept it from the console after signing in.</p>
    </div>
  )
}
