/**
 * @module
 * A hashing worker: receives `{id, path}`, answers `{id, progress}` while hashing and then `{id, sha256}`
 * or `{id, error}`. Built into the binary as its own entry point (see scripts/build.ts).
 */
import { hashFileSync } from './hash-file.ts'

declare const self: Worker

self.onmessage = (event: MessageEvent<{ id: number; path: string }>) => {
	const { id, path } = event.data
	try {
		const sha256 = hashFileSync(path, (progress) => self.postMessage({ id, progress }))
		self.postMessage({ id, sha256 })
	} catch (error) {
		const err = error as NodeJS.ErrnoException
		self.postMessage({ id, error: { code: err.code ?? 'EIO', message: err.message } })
	}
}
