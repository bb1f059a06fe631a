/** Port of tests/test_integrity.py: hashing, the aggregate (and its coreutils recipe), artifact scans, diffs. */
import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { createHash, randomBytes } from 'node:crypto'
import { appendFileSync, mkdirSync, readFileSync, renameSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { FileChangedError, hashFileMapped, hashFileSync } from '../../src/core/hash-file.ts'
import { HashReadError, type HashJob, hashFiles } from '../../src/core/hashing.ts'
import { aggregateSha256, compareBytes, contentAddress, diffFiles, hasChanges, scanArtifacts } from '../../src/core/integrity.ts'
import { ROOT } from '../helpers/paths.ts'
import { tempDir } from '../helpers/registry.ts'

/** hash-file.ts reads in chunks of this many bytes (1 MiB); sizes around it are the awkward ones. */
const CHUNK = 1 << 20
/** hashing.ts starts hashing children only for sets of at least this many bytes (64 MiB). */
const CHILD_THRESHOLD = 64 << 20

const sha256 = (data: Uint8Array | string) => createHash('sha256').update(data).digest('hex')

/** The coreutils recipe, exactly as the doc comment of src/core/integrity.ts gives it. */
function documentedRecipe(): string {
	const source = readFileSync(join(ROOT, 'src', 'core', 'integrity.ts'), 'utf8')
	const lines = source.split('\n').map((l) => l.replace(/^ \*\s*/, ''))
	const first = lines.findIndex((l) => l.startsWith('cd MODEL_DIR && '))
	if (first < 0) throw new Error('the coreutils recipe is missing from the doc comment of src/core/integrity.ts')
	let recipe = ''
	for (let i = first; i < lines.length; i++) {
		const line = lines[i] as string
		if (!line.endsWith('\\')) {
			recipe += line
			break
		}
		recipe += line.slice(0, -1).trimEnd() + ' '
	}
	// "*\/" keeps the comment open in the source; the shell gets "*/"
	return recipe.replace('cd MODEL_DIR && ', '').replaceAll('*\\/', '*/')
}

/** The aggregate as anyone can compute it with coreutils, in `folder`. */
async function coreutilsAggregate(folder: string): Promise<string> {
	const proc = Bun.spawn(['bash', '-c', documentedRecipe()], { cwd: folder, stdout: 'pipe', stderr: 'pipe' })
	const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited])
	if (code !== 0) throw new Error(`the coreutils recipe failed (${code}): ${err}`)
	return out.split(/\s+/)[0] as string
}

const jobsOf = (root: string): HashJob[] =>
	scanArtifacts(root).files.map((f) => ({ path: f.path, abspath: f.abspath, size: f.fingerprint.size }))

async function loaderAggregate(folder: string): Promise<string> {
	return aggregateSha256(await hashFiles(jobsOf(folder)))
}

describe('hashFileSync()', () => {
	test.each([0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 7])('matches node:crypto on %d bytes', (size) => {
		using dir = tempDir()
		const data = randomBytes(size)
		const path = join(dir.path, 'f.bin')
		writeFileSync(path, data)
		expect(hashFileSync(path)).toBe(sha256(data))
	})

	test('reports progress for every byte', () => {
		using dir = tempDir()
		const size = 3 * CHUNK + 5
		const path = join(dir.path, 'f.bin')
		writeFileSync(path, randomBytes(size))
		const seen: number[] = []
		hashFileSync(path, (n) => seen.push(n))
		expect(seen.reduce((a, b) => a + b, 0)).toBe(size)
	})
})

describe('aggregateSha256()', () => {
	test('is the sha256 of the sorted manifest lines, without a trailing newline', () => {
		const hashes = new Map([
			['b.txt', 'b'.repeat(64)],
			['a.txt', 'a'.repeat(64)]
		])
		expect(aggregateSha256(hashes)).toBe(sha256(`${'a'.repeat(64)}  a.txt\n${'b'.repeat(64)}  b.txt`))
		expect(aggregateSha256(new Map())).toBe(sha256(''))
	})

	test('equals the coreutils recipe of the doc comment, on awkward names and sizes', async () => {
		using dir = tempDir()
		const d = join(dir.path, 'm')
		const files: [string, number][] = [
			['empty', 0],
			['one', 1],
			['chunk', CHUNK],
			['chunk+1', CHUNK + 1],
			['sub dir/naïve é.json', 10],
			['sub dir/deeper/x', 3],
			['Zeta', 5],
			['alpha', 5],
			['\uff01wide', 2],
			['😀emoji', 2]
		]
		for (const [name, size] of files) {
			mkdirSync(dirname(join(d, name)), { recursive: true })
			writeFileSync(join(d, name), randomBytes(size))
		}
		mkdirSync(join(d, '.git'))
		writeFileSync(join(d, '.git', 'HEAD'), 'ref: main')
		mkdirSync(join(d, 'sub dir', '.cache'))
		writeFileSync(join(d, 'sub dir', '.cache', 'x'), 'skip me')
		expect(documentedRecipe()).toBe(
			"find -L . -type f -not -path '*/.git/*' -not -path '*/.cache/*' -printf '%P\\0' " +
				'| xargs -0 sha256sum | LC_ALL=C sort | head -c -1 | sha256sum'
		)
		expect(await loaderAggregate(d)).toBe(await coreutilsAggregate(d))
	})
})

describe('scanArtifacts()', () => {
	test('skips .git and .cache folders and sorts POSIX paths by bytes', () => {
		using dir = tempDir()
		const d = join(dir.path, 'm')
		mkdirSync(join(d, 'b', '.cache'), { recursive: true })
		mkdirSync(join(d, '.git'))
		writeFileSync(join(d, 'b', 'x'), '1')
		writeFileSync(join(d, 'a'), '2')
		writeFileSync(join(d, 'B'), '2')
		writeFileSync(join(d, '.git', 'config'), '3')
		writeFileSync(join(d, 'b', '.cache', 'y'), '4')
		writeFileSync(join(d, '.hidden-file'), '5') // only the folders are skipped
		const scan = scanArtifacts(d)
		expect(scan.files.map((f) => f.path)).toEqual(['.hidden-file', 'B', 'a', 'b/x'])
		expect(scan.dangling).toEqual([])
		expect(scan.files[1]?.fingerprint.size).toBe(1n)
	})

	test('hashes a Hugging Face snapshot through its symlinks, and the blob name is a content address', async () => {
		using dir = tempDir()
		const data = randomBytes(5000)
		const sha = sha256(data)
		const blobs = join(dir.path, 'models--org--m', 'blobs')
		const snap = join(dir.path, 'models--org--m', 'snapshots', 'abc123')
		mkdirSync(blobs, { recursive: true })
		mkdirSync(snap, { recursive: true })
		writeFileSync(join(blobs, sha), data)
		symlinkSync(relative(snap, join(blobs, sha)), join(snap, 'model.safetensors'))
		const { files } = scanArtifacts(snap)
		expect(files.map((f) => f.path)).toEqual(['model.safetensors'])
		expect(await hashFiles(jobsOf(snap))).toEqual(new Map([['model.safetensors', sha]]))
		expect(contentAddress(files[0]?.abspath as string)).toBe(sha)
		expect(await loaderAggregate(snap)).toBe(await coreutilsAggregate(snap))
	})

	test('symlink loops and dangling links do not hang', () => {
		using dir = tempDir()
		const d = join(dir.path, 'm')
		mkdirSync(join(d, 'sub'), { recursive: true })
		writeFileSync(join(d, 'f'), 'x')
		symlinkSync(d, join(d, 'loop'))
		symlinkSync('..', join(d, 'sub', 'up'))
		symlinkSync(join(dir.path, 'missing'), join(d, 'dead'))
		const scan = scanArtifacts(d)
		expect(scan.files.map((f) => f.path)).toEqual(['f'])
		expect(scan.dangling).toEqual(['dead'])
	})

	test('a symlinked folder outside the model is followed once', () => {
		using dir = tempDir()
		const outside = join(dir.path, 'shared')
		mkdirSync(outside)
		writeFileSync(join(outside, 'tok.json'), '{}')
		const d = join(dir.path, 'm')
		mkdirSync(d)
		symlinkSync(outside, join(d, 'tokenizer'))
		expect(scanArtifacts(d).files.map((f) => f.path)).toEqual(['tokenizer/tok.json'])
	})

	test('a single-file model path is a set of one, named by its file name', () => {
		using dir = tempDir()
		const f = join(dir.path, 'model.gguf')
		writeFileSync(f, 'GGUF')
		const scan = scanArtifacts(f)
		expect(scan.files.map((x) => ({ path: x.path, abspath: x.abspath }))).toEqual([{ path: 'model.gguf', abspath: f }])
	})

	test('a missing root throws its stat error', () => {
		using dir = tempDir()
		expect(() => scanArtifacts(join(dir.path, 'nope'))).toThrow(expect.objectContaining({ code: 'ENOENT' }))
	})
})

describe('contentAddress()', () => {
	test('reads an Ollama blob name; a plain file has none', () => {
		using dir = tempDir()
		const blob = join(dir.path, `sha256-${'a'.repeat(64)}`)
		writeFileSync(blob, 'x')
		expect(contentAddress(blob)).toBe('a'.repeat(64))
		const colon = join(dir.path, `sha256:${'b'.repeat(64)}`)
		writeFileSync(colon, 'x')
		expect(contentAddress(colon)).toBe('b'.repeat(64))
		const plain = join(dir.path, 'model.gguf')
		writeFileSync(plain, 'x')
		expect(contentAddress(plain)).toBeUndefined()
		const upper = join(dir.path, 'A'.repeat(64))
		writeFileSync(upper, 'x')
		expect(contentAddress(upper)).toBeUndefined()
	})
})

describe('diffFiles()', () => {
	test('names the changed, added and removed paths', () => {
		const d = diffFiles(
			new Map([
				['a', '1'],
				['b', '2'],
				['c', '3']
			]),
			new Map([
				['a', '1'],
				['b', '9'],
				['d', '4']
			])
		)
		expect(d).toEqual({ changed: ['b'], added: ['d'], removed: ['c'] })
		expect(hasChanges(d)).toBe(true)
		expect(hasChanges(diffFiles(new Map([['a', '1']]), new Map([['a', '1']])))).toBe(false)
	})
})

describe('hashFileMapped()', () => {
	test('matches the read loop on awkward sizes, with progress for every byte', () => {
		using dir = tempDir()
		for (const size of [0, 1, CHUNK - 1, 16 * CHUNK, 16 * CHUNK + 1, 70 * CHUNK + 5]) {
			const path = join(dir.path, `f${size}`)
			writeFileSync(path, size > 4 * CHUNK ? Buffer.alloc(size, size % 251) : randomBytes(size))
			let seen = 0
			expect(hashFileMapped(path, (n) => (seen += n))).toBe(hashFileSync(path))
			expect(seen).toBe(size)
		}
	})

	test('a file that grows while it is hashed is a FileChangedError, not a digest of a prefix', () => {
		using dir = tempDir()
		const path = join(dir.path, 'grows.bin')
		writeFileSync(path, Buffer.alloc(40 * CHUNK, 1))
		let grown = false
		const hashing = () =>
			hashFileMapped(path, () => {
				if (!grown) appendFileSync(path, 'more')
				grown = true
			})
		expect(hashing).toThrow(FileChangedError)
	})

	test('a file replaced by a rename while it is hashed is a FileChangedError', () => {
		using dir = tempDir()
		const path = join(dir.path, 'model.bin')
		writeFileSync(path, Buffer.alloc(40 * CHUNK, 1))
		let replaced = false
		const hashing = () =>
			hashFileMapped(path, () => {
				if (replaced) return
				replaced = true
				writeFileSync(path + '.new', Buffer.alloc(40 * CHUNK, 2))
				renameSync(path + '.new', path)
			})
		expect(hashing).toThrow(FileChangedError)
	})
})

describe('compareBytes()', () => {
	test('orders by UTF-8 bytes, as LC_ALL=C sort does', () => {
		expect(['b', 'B', '😀', '\uff01', 'a'].sort(compareBytes)).toEqual(['B', 'a', 'b', '\uff01', '😀'])
	})

	test('agrees with comparing the UTF-8 encodings, on random strings full of surrogates and high units', () => {
		const units = [0x41, 0x7a, 0xe9, 0x7ff, 0x800, 0xd7ff, 0xe000, 0xfffd, 0xffff]
		const pairs = ['\ud83d\ude00', '\u{10000}', '\u{10ffff}']
		let seed = 7
		const next = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31)
		const random = () =>
			Array.from({ length: next() % 5 }, () => (next() % 3 === 0 ? pairs[next() % pairs.length] : String.fromCharCode(units[next() % units.length] as number))).join('')
		const sign = (n: number) => Math.sign(n)
		for (let i = 0; i < 5000; i++) {
			const a = random()
			const b = random()
			expect(sign(compareBytes(a, b))).toBe(sign(Buffer.compare(Buffer.from(a), Buffer.from(b))))
		}
	})
})

describe('hashFiles()', () => {
	test('hashes small sets on the calling thread, with the same answers for any process count', async () => {
		using dir = tempDir()
		for (let i = 0; i < 7; i++) writeFileSync(join(dir.path, `f${i}`), randomBytes(100_000 * i))
		const jobs = jobsOf(dir.path)
		const serial = await hashFiles(jobs, { processes: 1 })
		expect(await hashFiles(jobs, { processes: 4 })).toEqual(serial)
		for (const job of jobs) expect(serial.get(job.path)).toBe(sha256(readFileSync(job.abspath)))
	})

	test('a file that cannot be read is a HashReadError naming it', async () => {
		using dir = tempDir()
		writeFileSync(join(dir.path, 'a'), 'x')
		const jobs = [...jobsOf(dir.path), { path: 'gone', abspath: join(dir.path, 'gone'), size: 1n }]
		const err = await hashFiles(jobs).catch((e: unknown) => e)
		expect(err).toBeInstanceOf(HashReadError)
		expect(err).toMatchObject({ path: 'gone', code: 'ENOENT' })
	})

	test('an error thrown by the progress callback stops hashing and is passed on as it is', async () => {
		using dir = tempDir()
		writeFileSync(join(dir.path, 'f.bin'), randomBytes(3 * CHUNK))
		const stop = new Error('stop')
		let calls = 0
		const err = await hashFiles(jobsOf(dir.path), {
			onProgress: () => {
				calls++
				throw stop
			}
		}).catch((e: unknown) => e)
		expect(err).toBe(stop)
		expect(calls).toBe(1)
	})

	describe('in child processes (sets of 64 MiB and more, or any set with inlineBelow: 0)', () => {
		// Awkward sizes beside a large filler, so that the set is big enough for children.
		const sizes = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK + 3, 3, 17 * CHUNK + 1, 40 * CHUNK]
		let dir: ReturnType<typeof tempDir>
		let jobs: HashJob[]
		let expected: Map<string, string>

		beforeAll(() => {
			dir = tempDir()
			expected = new Map()
			sizes.forEach((size, i) => {
				const data = size > 4 * CHUNK ? Buffer.alloc(size, i + 1) : randomBytes(size)
				writeFileSync(join(dir.path, `f${i}.bin`), data)
				expected.set(`f${i}.bin`, sha256(data))
			})
			jobs = jobsOf(dir.path)
			expect(jobs.reduce((sum, j) => sum + j.size, 0n)).toBeGreaterThanOrEqual(BigInt(CHILD_THRESHOLD))
		})
		afterAll(() => dir[Symbol.dispose]())

		test('match node:crypto on awkward sizes, and the serial answer', async () => {
			expect(await hashFiles(jobs, { processes: 2 })).toEqual(expected)
			expect(await hashFiles(jobs, { processes: 1 })).toEqual(expected)
		})

		test('report progress for every byte', async () => {
			let seen = 0
			await hashFiles(jobs, { processes: 2, onProgress: (n) => (seen += n) })
			expect(seen).toBe(sizes.reduce((a, b) => a + b, 0))
		})

		test('small sets go to a child too when the caller must never block (the server)', async () => {
			const small = jobs.filter((j) => j.size < 4n * BigInt(CHUNK))
			const got = await hashFiles(small, { processes: 2, inlineBelow: 0 })
			expect(got).toEqual(new Map(small.map((j) => [j.path, expected.get(j.path) as string])))
		})

		test('a file that shrinks under the mapping kills only the child: a HashReadError says it changed', async () => {
			using scratch = tempDir()
			const path = join(scratch.path, 'shrinks.bin')
			writeFileSync(path, Buffer.alloc(96 * CHUNK, 7))
			let truncated = false
			const err = await hashFiles([{ path: 'shrinks.bin', abspath: path, size: BigInt(96 * CHUNK) }], {
				onProgress: () => {
					if (!truncated) truncateSync(path, CHUNK)
					truncated = true
				}
			}).catch((e: unknown) => e)
			expect(err).toBeInstanceOf(HashReadError)
			expect(err).toMatchObject({ path: 'shrinks.bin', code: 'ECHANGED' })
		})

		test('a file that disappears is a HashReadError naming it', async () => {
			const missing = { path: 'gone.bin', abspath: join(dir.path, 'gone.bin'), size: 1n }
			const err = await hashFiles([...jobs, missing], { processes: 2 }).catch((e: unknown) => e)
			expect(err).toBeInstanceOf(HashReadError)
			expect(err).toMatchObject({ path: 'gone.bin', code: 'ENOENT' })
		})

		test('an error thrown by the progress callback stops hashing and is passed on as it is', async () => {
			const stop = new Error('stop')
			let calls = 0
			const err = await hashFiles(jobs, {
				processes: 2,
				onProgress: () => {
					calls++
					throw stop
				}
			}).catch((e: unknown) => e)
			expect(err).toBe(stop)
			expect(calls).toBe(1)
		})
	})
})
