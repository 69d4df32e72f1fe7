'use client'
import { zodResolver } from '@hookform/resolvers/zod'
import { useMutation, useQueryClient } from '@tanstack/react-query'
import { useRouter, useSearchParams } from 'next/navigation'
import { Suspense, useEffect, useState } from 'react'
import { useForm } from 'react-hook-form'
import { z } from 'zod'
import { ZEmail } from '@alveary/core/schemas'
import { Logo } from '@/components/logo'
import { Button, ErrorBox, Field, inputCls } from '@/components/ui'
import { errorCode, isTRPCError, useTRPC } from '@/lib/trpc'

/** Seconds until sign-in may be tried again after a 429 (counting down), else 0. */
function useRetryWait(err: unknown): number {
  const [left, setLeft] = useState(0)
  useEffect(() => {
    if (errorCode(err) !== 'TOO_MANY_REQUESTS' || !isTRPCError(err)) return setLeft(0)
    const seconds = (err.data as { retryAfterSeconds?: number | null } | undefined)?.retryAfterSeconds ?? 1
    const until = Date.now() + seconds * 1000
    const tick = () => setLeft(Math.max(0, Math.ceil((until - Date.now()) / 1000)))
    tick()
    const timer = setInterval(tick, 250)
    return () => clearInterval(timer)
  }, [err])
  return left
}

const ZLogin = z.object({ email: ZEmail, password: z.string().min(1, 'Required') })
type TLogin = z.infer<typeof ZLogin>

function LoginForm() {
  const trpc = useTRPC()
  const qc = useQueryClient()
  const router = useRouter()
  const params = useSearchParams()
  const form = useForm<z.input<typeof ZLogin>, unknown, TLogin>({ resolver: zodResolver(ZLogin), defaultValues: { email: '', password: '' } })
  const login = useMutation(
    trpc.auth.login.mutationOptions({
      onSuccess: async () => {
        qc.clear()
        const next = params.get('next')
        router.replace(next && next.startsWith('/') && !next.startsWith('//') ? next : '/')
      },
    }),
  )
  const errors = form.formState.errors
  const wait = useRetryWait(login.error)
  return (
    <form onSubmit={form.handleSubmit((v) => login.mutate(v))} className="space-y-4" noValidate>
      <Field label="Email" htmlFor="email" error={errors.email?.message}>
        <input id="email" type="email" autoComplete="username" autoFocus className={inputCls} aria-invalid={!!errors.email} {...form.register('email')} />
      </Field>
      <Field label="Password" htmlFor="password" error={errors.password?.message}>
        <input id="password" type="password" autoComplete="current-password" className={inputCls} aria-invalid={!!errors.password} {...form.register('password')} />
      </Field>
      {errorCode(login.error) === 'TOO_MANY_REQUESTS' ? (
        <div role="alert" data-testid="login-throttled" className="rounded-md border border-amber-200 bg-amber-50 px-3 py-2 text-sm text-amber-900">
          {login.error?.message.replace(/\s*Try again in \d+ s\.$/, '')}{' '}
          {wait > 0 ? (
            <>
              You can try again in <b className="tabular-nums">{wait} s</b>.
            </>
          ) : (
            'You can try again now.'
          )}
        </div>
      ) : (
        <ErrorBox error={login.error} />
      )}
      <Button type="submit" variant="primary" className="w-full" disabled={login.isPending || login.isSuccess || wait > 0}>
        {login.isPending || login.isSuccess ? 'Signing in…' : wait > 0 ? `Wait ${wait} s` : 'Sign in'}
      </Button>
    </form>
  )
}

export default function LoginPage() {
  return (
    <main className="flex min-h-screen items-center justify-center bg-slate-900 px-4">
      <div className="w-full max-w-sm">
        <div className="mb-6 flex items-center justify-center gap-2.5 text-white">
          <Logo className="size-8" />
          <span className="text-2xl font-semibold tracking-tight">Alveary</span>
        </div>
        <div className="rounded-xl bg-white p-6 shadow-xl ring-1 ring-black/5">
          <h1 className="mb-1 text-base font-semibold text-slate-900">Sign in to the console</h1>
          <p className="mb-5 text-sm text-slate-500">Use your Alveary account.</p>
          <Suspense>
            <LoginForm />
          </Suspense>
        </div>
      </div>
    </main>
  )
}
