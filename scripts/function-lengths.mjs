// Lists the longest functions of a source tree (name, file, lines), for reviews of structure:
//   node scripts/function-lengths.mjs [directory=src] [how-many=10]
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import ts from 'typescript';

const [root = 'src', most = '10'] = process.argv.slice(2);
const files = readdirSync(root, { recursive: true }).map(String).filter((name) => name.endsWith('.ts')).map((name) => join(root, name));
const found = [];
for (const file of files) {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
  const line = (position) => source.getLineAndCharacterOfPosition(position).line + 1;
  const visit = (node) => {
    if (ts.isFunctionLike(node) && 'body' in node && node.body) {
      let name = node.name?.getText(source);
      if (!name && ts.isVariableDeclaration(node.parent)) name = node.parent.name.getText(source);
      if (!name && ts.isPropertyAssignment(node.parent)) name = node.parent.name.getText(source);
      const start = line(node.getStart(source));
      const end = line(node.end);
      if (name) found.push({ name, file: relative('.', file), start, end, lines: end - start + 1 });
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
}
found.sort((a, b) => b.lines - a.lines);
for (const fn of found.slice(0, Number(most))) console.log(`${String(fn.lines).padStart(4)}  ${fn.name}  ${fn.file}:${fn.start}-${fn.end}`);
