// Regenerates the README's component reference from the component specs (run after `npm run build`).
import { readFileSync, writeFileSync } from 'node:fs';
import { withComponentReference } from '../dist/commands/list.js';

const readme = readFileSync('README.md', 'utf8');
const next = withComponentReference(readme);
if (next !== readme) writeFileSync('README.md', next);
console.log(next === readme ? 'README component reference is up to date' : 'README component reference regenerated');
