'use client'
import { zodResolver } from '@hookform/resolvers/zod'
import { useMutation, useQuery, useQueryClient } from '@tanstack/react-query'
import { useEffect, useState } from 'react'
import { useForm } from 'react-hook-form'
import { z } from 'zod'
import { ZPassword, ZPersonName } from '@alveary/core/schemas'
import { Logo } from '@/components/logo'
import { InvitationAnswer, InvitationSummary } from '@/components/received-invitations'
import { Button, ErrorBox, Field, inputCls, Loading } from '@/components/ui'
import { errorCode, useTRPC, type TReceivedInvitation } from '@/lib/trpc'

const ZSignUpForm = z.object({ name: ZPersonName, password: ZPassword })
type TSignUpForm = z.infer<typeof ZSignUpForm>

function SignUp({ token, invitation }: { token: string; invitation: TReceivedInvitation }) {
  const trpc = useTRPC()
  const form = useForm<TSignUpForm>({ resolver: zodResolver(ZSignUpForm), defaultValues: { name: '', password: '' } })
  const signUp = useMutation(trpc.invitations.signUp.mutationOptions({ onSuccess: ({ tenantSlug }) => window.location.assign(`/t/${tenantSlug}/apps`) }))
  const errors = form.formState.errors
  const signIn = `/login?next=${encodeURIComponent(`/invite#${token}`)}`
  return (
    <div className="space-y-5">
      <form onSubmit={form.handleSubmit((v) => signUp.mutate({ token, ...v }))} className="space-y-4" noValidate data-testid="signup-form">
        <h2 className="text-sm font-semibold text-slate-900">New to Alveary? Create your account</h2>
        <Field label="Email" htmlFor="su-email">
          <input id="su-email" className={inputCls} value={invitation.email} disabled readOnly />
        </Field>
        <Field label="Your name" htmlFor="su-name" error={errors.name?.message}>
          <input id="su-name" autoComplete="name" className={inputCls} aria-invalid={!!errors.name} {...form.register('name')} />
        </Field>
        <Field label="Password" htmlFor="su-password" error={errors.password?.message} hint="At least 8 characters.">
          <input id="su-password" type="password" autoComplete="new-password" className={inputCls} aria-invalid={!!errors.password} {...form.register('password')} />
        </Field>
        <ErrorBox error={signUp.error} />
        {errorCode(signUp.error) === 'CONFLICT' ? (
          <a href={signIn} className="block text-sm font-medium text-slate-900 underline">
            Sign in to accept
          </a>
        ) : null}
        <Button type="submit" variant="primary" className="w-full" disabled={signUp.isPending || signUp.isSuccess} data-testid="signup-submit">
          {signUp.isPending || signUp.isSuccess ? 'Creating your account…' : `Create account and join ${invitation.tenant.name}`}
        </Button>
      </form>
      <p className="border-t border-slate-100 pt-4 text-sm text-slate-600">
        Already have an account with this e-mail?{' '}
        <a href={signIn} className="font-medium text-slate-900 underline" data-testid="invite-sign-in">
          Sign in to accept
        </a>
      </p>
    </div>
  )
}

function SignedInAs({ email, invitation }: { email: string; invitation: TReceivedInvitation }) {
  const trpc = useTRPC()
  const qc = useQueryClient()
  const [declined, setDeclined] = useState(false)
  const logout = useMutation(trpc.auth.logout.mutationOptions({ onSettled: () => qc.clear() }))
  if (declined) return <p className="text-sm text-slate-600">Invitation declined. Nothing changed for you.</p>
  if (email === invitation.email) return <InvitationAnswer invitation={invitation} onDeclined={() => setDeclined(true)} />
  return (
    <div className="space-y-3 text-sm text-slate-600">
      <p>
        You are signed in as <b>{email}</b>; this invitation is for <b>{invitation.email}</b>.
      </p>
      <Button onClick={() => logout.mutate()} disabled={logout.isPending}>
        Sign out to use it
      </Button>
    </div>
  )
}

/** Where an invitation link lands (`/invite#<token>`): no session needed. */
export default function InvitePage() {
  const trpc = useTRPC()
  const [token, setToken] = useState<string | null>(null)
  useEffect(() => setToken(window.location.hash.slice(1)), [])
  const preview = useQuery(trpc.invitations.preview.queryOptions({ token: token ?? '' }, { enabled: !!token, retry: false }))
  const me = useQuery(trpc.auth.me.queryOptions(undefined, { retry: false }))
  const signedIn = me.data?.user.email
  let body
  if (token === '') body = <p className="text-sm text-slate-600">This link has no invitation in it. Ask for the link again.</p>
  else if (!token || preview.isPending || me.isPending) body = <Loading />
  else if (preview.isError)
    body = (
      <div className="space-y-3" data-testid="invitation-invalid">
        <ErrorBox error={preview.error} />
        <p className="text-sm text-slate-600">Ask whoever invited you for a new link.</p>
      </div>
    )
  else
    body = (
      <div className="space-y-5">
        <InvitationSummary invitation={preview.data} />
        {signedIn ? <SignedInAs email={signedIn} invitation={preview.data} /> : <SignUp token={token} invitation={preview.data} />}
      </div>
    )
  return (
    <main className="flex min-h-screen items-center justify-center bg-slate-900 px-4">
      <title>Invitation · Alveary</title>
      <div className="w-full max-w-md">
        <div className="mb-6 flex items-center justify-center gap-2.5 text-white">
          <Logo className="size-8" />
          <span className="text-2xl font-semibold tracking-tight">Alveary</span>
        </div>
        <div className="rounded-xl bg-white p-6 shadow-xl ring-1 ring-black/5" data-testid="invite-page">
          <h1 className="mb-4 text-base font-semibold text-slate-900">You are invited</h1>
          {body}
        </div>
      </div>
    </main>
  )
}
