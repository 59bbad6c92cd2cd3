/** Types for Bun's text imports (`import src from "./x.lua" with { type: "text" }`): the file's contents. */
declare module "*.lua" {
  const text: string;
  export default text;
}
