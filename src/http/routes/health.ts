/** @module GET /healthz: liveness, and whether the registry on disk is usable (503 `degraded` if not). */
import { Elysia } from 'elysia'
import { LoaderError } from '../../core/errors.ts'
import type { Deps } from '../../core/service.ts'
import { Health } from '../model.ts'

export function healthRoutes(deps: Deps) {
	return new Elysia({ name: 'health' }).get(
		'/healthz',
		({ set }) => {
			try {
				const { registry, stale } = deps.store.loadOrLastGood()
				if (!stale) return { status: 'ok' as const, models: registry.entries.length }
				set.status = 503
				return { status: 'degraded' as const, models: registry.entries.length, reason: firstLine(stale) }
			} catch (error) {
				if (!(error instanceof LoaderError)) throw error
				set.status = 503
				return { status: 'degraded' as const, models: 0, reason: firstLine(error) }
			}
		},
		{
			response: { 200: Health, 503: Health },
			detail: { tags: ['health'], summary: 'Liveness and registry health', description: 'Needs no token.' }
		}
	)
}

const firstLine = (error: LoaderError) => error.message.split('\n')[0] ?? error.message
