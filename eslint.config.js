// Lint what the compiler cannot: promises nobody awaits lose errors silently.
import tseslint from "typescript-eslint";

export default tseslint.config(
  { ignores: ["node_modules/**", "scratch/**", "bin/**", "bench/.work/**", ".ordo/**", "eslint.config.js", "examples/.readme-*"] },
  {
    files: ["**/*.ts"],
    languageOptions: {
      parser: tseslint.parser,
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    plugins: { "@typescript-eslint": tseslint.plugin },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
    },
  },
);
