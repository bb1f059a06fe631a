/** @module POST /v1/probe/vision: proof that a model sees. */
import { Elysia } from 'elysia'
import { RequestError } from '../../core/errors.ts'
import { decodeBase64Image, prepareImage, readImageFile, resolveImagePath, type PreparedImage } from '../../core/images.ts'
import { probeVision } from '../../core/probe-service.ts'
import { ProbeResult } from '../../core/schema.ts'
import type { Deps } from '../../core/service.ts'
import { errorResponse } from '../errors.ts'
import { BODY_ERRORS, ProbeBody, responses } from '../model.ts'
import type { Counters } from '../prom.ts'

export function probeRoutes(deps: Deps, counters: Counters) {
	return new Elysia({ name: 'probe' }).post(
		'/v1/probe/vision',
		async ({ body }) => {
			if (body.image_path !== undefined && body.image_b64 !== undefined) {
				throw new RequestError('Give at most one of image_path or image_b64')
			}
			deps.store.loadOrLastGood().registry.get(body.name) // 404 before looking at the image
			let image: PreparedImage | undefined
			if (body.image_path !== undefined) {
				const path = resolveImagePath(body.image_path, deps.settings.imageRoots)
				image = await prepareImage(readImageFile(path, 'image_path'), 'image_path')
			} else if (body.image_b64 !== undefined) {
				image = await prepareImage(decodeBase64Image(body.image_b64), 'image_b64')
			}
			// Counted as ok once it ran (its outcome, unknown included, is in imageworks_probe_outcomes).
			const { result, errorCode } = await counters.counted('probe_vision', () => probeVision(deps, body.name, { image }))
			if (result.outcome !== 'unknown') return result
			return errorResponse(errorCode === 'backend_timeout' ? 504 : 502, {
				error: errorCode ?? 'backend_error',
				message: result.error ?? 'the backend failed',
				outcome: 'unknown',
				result
			})
		},
		{
			parse: 'json',
			body: ProbeBody,
			response: responses(ProbeResult, {
				...BODY_ERRORS,
				400: 'not an image (or the body is not JSON)',
				403: 'image_path outside the image roots',
				404: 'unknown model',
				413: 'image or body too large',
				502: 'backend unreachable or failing: outcome unknown (detail.result has the probe)',
				504: 'backend timed out: outcome unknown'
			}),
			detail: {
				tags: ['probes'],
				summary: 'Probe vision',
				description:
					'Prove the model sees: two rounds of "what colour is the shape?" whose answers are checked. Outcomes verified, not_supported (200) or unknown (502/504).'
			}
		}
	)
}
