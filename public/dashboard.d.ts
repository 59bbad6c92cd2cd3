/** views/index.ts imports dashboard.js as text (`with { type: "text" }`); this gives tsc that type. */
declare const text: string;
export default text;
