'use client'
import { zodResolver } from '@hookform/resolvers/zod'
import { useMutation, useQueryClient } from '@tanstack/react-query'
import { useRouter, useSearchParams } from 'next/navigation'
import { Suspense } from 'react'
import { useForm } from 'react-hook-form'
import { z } from 'zod'
import { ZEmail } from '@alveary/core/schemas'
import { Logo } from '@/components/logo'
import { Button, ErrorBox, Field, inputCls } from '@/components/ui'
import { useTRPC } from '@/lib/trpc'

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
  return (
    <form onSubmit={form.handleSubmit((v) => login.mutate(v))} className="space-y-4" noValidate>
      <Field label="Email" htmlFor="email" error={errors.email?.message}>
        <input id="email" type="email" autoComplete="username" autoFocus className={inputCls} aria-invalid={!!errors.email} {...form.register('email')} />
      </Field>
      <Field label="Password" htmlFor="password" error={errors.password?.message}>
        <input id="password" type="password" autoComplete="current-password" className={inputCls} aria-invalid={!!errors.password} {...form.register('password')} />
      </Field>
      <ErrorBox error={login.error} />
      <Button type="submit" variant="primary" className="w-full" disabled={login.isPending || login.isSuccess}>
        {login.isPending || login.isSuccess ? 'Signing in…' : 'Sign in'}
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
