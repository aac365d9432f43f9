// Text from outside (a commit's subject and author, a server's error, a file name in a tree)
// printed to a terminal or sent to a chat: control characters and the bidirectional overrides
// shown as \u escapes, so that no one who can push a commit can move the operator's cursor,
// clear the screen, forge a line of output or make text read backwards.
const unprintable = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069]/g;

export function printable(text: string): string {
  return text.replace(unprintable, (character) => `\\u${character.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
