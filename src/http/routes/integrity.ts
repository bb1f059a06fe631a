/** @module POST /v1/verify, /v1/models/{name}/lock and /unlock: the version lock. */
import { Elysia } from 'elysia'
import { LockResult, VerifyResult } from '../../core/schema.ts'
import { type Deps, lockModel, unlockModel, verifyModel } from '../../core/service.ts'
import { BODY_ERRORS, LockBody, NameParams, VerifyBody, checked, responses } from '../model.ts'
import type { Counters } from '../prom.ts'

export function integrityRoutes(deps: Deps, counters: Counters) {
	return new Elysia({ name: 'integrity' })
		.post('/v1/verify', ({ body }) => counters.counted('verify', () => verifyModel(deps, body.name)), {
			parse: 'json',
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
			({ params, body }) => {
				// The body is optional, which the OpenAPI generator cannot say of a declared body: checked here.
				const options = checked(LockBody, body ?? {})
				return lockModel(deps, params.name, { setExpected: options.set_expected ?? false, replace: options.replace ?? false })
			},
			{
				params: NameParams,
				parse: 'json',
				response: responses(LockResult, { ...BODY_ERRORS, 404: 'unknown model', 409: 'the files do not match the lock', 422: 'invalid request, or the files are missing' }),
				detail: {
					tags: ['integrity'],
					summary: 'Lock a model',
					description: 'Select then refuses the model whenever its files drift from the lock.',
					requestBody: { required: false, content: { 'application/json': { schema: LockBody } } }
				}
			}
		)
		.post('/v1/models/:name/unlock', ({ params }) => unlockModel(deps, params.name), {
			params: NameParams,
			parse: 'json',
			response: responses(LockResult, { ...BODY_ERRORS, 404: 'unknown model' }),
			detail: { tags: ['integrity'], summary: 'Unlock a model', description: 'Clears locked; keeps the expected hash for a later re-lock.' }
		})
}
