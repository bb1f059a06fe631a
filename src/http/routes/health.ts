/** @module GET /healthz: liveness, and whether the registry on disk is usable (503 `degraded` if not). */
import { Elysia } from 'elysia'
import { LoaderError } from '../../core/errors.ts'
import type { Deps } from '../../core/service.ts'
import { redact } from '../errors.ts'
import { Health } from '../model.ts'

export function healthRoutes(deps: Deps) {
	// The whole message (it lists the problems) without server paths: this route needs no token.
	const reasonOf = (error: LoaderError) => redact({ reason: error.message }, deps.settings.registryPath)['reason'] as string
	return new Elysia({ name: 'health' }).get(
		'/healthz',
		({ set }) => {
			try {
				const { registry, stale } = deps.store.loadOrLastGood()
				if (!stale) return { status: 'ok' as const, models: registry.entries.length }
				set.status = 503
				return { status: 'degraded' as const, models: registry.entries.length, reason: reasonOf(stale) }
			} catch (error) {
				if (!(error instanceof LoaderError)) throw error
				set.status = 503
				return { status: 'degraded' as const, models: 0, reason: reasonOf(error) }
			}
		},
		{
			parse: 'json',
			response: { 200: Health, 503: Health },
			detail: { tags: ['health'], summary: 'Liveness and registry health', description: 'Needs no token.' }
		}
	)
}
