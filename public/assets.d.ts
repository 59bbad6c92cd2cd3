/** Types for the dashboard's text imports in views/index.ts (`with { type: "text" }`: the file's contents). */
declare module "*.css" {
  const text: string;
  export default text;
}
declare module "*.svg" {
  const text: string;
  export default text;
}
