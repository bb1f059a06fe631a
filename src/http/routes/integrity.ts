/** @module POST /v1/verify, /v1/models/{name}/lock and /unlock: the version lock. */
import { Elysia } from 'elysia'
import { LockResult, VerifyResult } from '../../core/schema.ts'
import { type Deps, lockModel, unlockModel, verifyModel } from '../../core/service.ts'
import { BODY_ERRORS, LockBody, NameParams, VerifyBody, responses } from '../model.ts'
import { Type } from '@sinclair/typebox'
import type { Counters } from '../prom.ts'

export function integrityRoutes(deps: Deps, counters: Counters) {
	return new Elysia({ name: 'integrity' })
		.post('/v1/verify', ({ body }) => {
			counters.count('verify')
			return verifyModel(deps, body.name)
		}, {
			body: VerifyBody,
			response: responses(VerifyResult, {
				...BODY_ERRORS,
				404: 'unknown model',
				409: 'lock violation (with the file diff) or a corrupt content-addressed file',
				422: "invalid request, or the model's files are missing"
			}),
			detail: { tags: ['integrity'], summary: 'Verify a model', description: 'Rehash every file of the model, record the result, and check the lock.' }
		})
		.post(
			'/v1/models/:name/lock',
			({ params, body }) =>
				lockModel(deps, params.name, { setExpected: body?.set_expected ?? false, replace: body?.replace ?? false }),
			{
				params: NameParams,
				body: Type.Optional(LockBody),
				response: responses(LockResult, { ...BODY_ERRORS, 404: 'unknown model', 409: 'the files do not match the lock', 422: 'invalid request, or the files are missing' }),
				detail: { tags: ['integrity'], summary: 'Lock a model', description: 'Select then refuses the model whenever its files drift from the lock.' }
			}
		)
		.post('/v1/models/:name/unlock', ({ params }) => unlockModel(deps, params.name), {
			params: NameParams,
			response: responses(LockResult, { ...BODY_ERRORS, 404: 'unknown model' }),
			detail: { tags: ['integrity'], summary: 'Unlock a model', description: 'Clears locked; keeps the expected hash for a later re-lock.' }
		})
}
