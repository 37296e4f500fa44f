; Packages and classes a Java file imports (`.*` imports give the package).

(import_declaration [(identifier) (scoped_identifier)] @import)
