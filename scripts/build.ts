/** Build dist/imageworks-loader for this machine: one self-contained executable (see lib/compile.ts). */
import { VERSION, compile, gitCommit } from './lib/compile.ts'

const outfile = process.argv[2] ?? 'dist/imageworks-loader'
const commit = await gitCommit()
await compile(outfile, { commit })
console.log(`built ${outfile} (${VERSION}, commit ${commit})`)
